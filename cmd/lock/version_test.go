package main

import (
	"os/exec"
	"path/filepath"
	"regexp"
	"runtime"
	"strings"
	"testing"
)

// TestVersion: `lock version` and `lock --version` print the module
// version, the VCS revision, whether the tree was modified, and the Go
// version, and exit 0. The binary is built here with -buildvcs=true (the
// build info is stamped only when the tree is a VCS checkout).
func TestVersion(t *testing.T) {
	head, err := exec.Command("git", "rev-parse", "HEAD").Output()
	if err != nil {
		t.Fatalf("git rev-parse HEAD: %v (the test needs the git checkout)", err)
	}
	status, err := exec.Command("git", "status", "--porcelain").Output()
	if err != nil {
		t.Fatalf("git status: %v", err)
	}
	bin := filepath.Join(t.TempDir(), "lock")
	if out, err := exec.Command("go", "build", "-buildvcs=true", "-o", bin, ".").CombinedOutput(); err != nil {
		t.Fatalf("go build: %v\n%s", err, out)
	}
	// The module version: "(devel)", or, since Go 1.24, a pseudo-version
	// made from the revision ("+dirty" when modified) in a checkout.
	modified := ""
	if len(strings.TrimSpace(string(status))) > 0 {
		modified = ` \(modified\)`
	}
	want := regexp.MustCompile(`^lock (\(devel\)|v[0-9][^ ,]*), revision ` + strings.TrimSpace(string(head)) +
		modified + `, ` + regexp.QuoteMeta(runtime.Version()) + `$`)
	for _, arg := range []string{"version", "--version"} {
		out, err := exec.Command(bin, arg).Output()
		if err != nil {
			t.Fatalf("lock %s: %v, want exit 0", arg, err)
		}
		if got := strings.TrimSpace(string(out)); !want.MatchString(got) {
			t.Errorf("lock %s = %q, want it to match %s", arg, got, want)
		}
	}
	if err := exec.Command(bin, "version", "extra").Run(); err == nil {
		t.Errorf("lock version extra: exit 0, want a usage error")
	}
}
