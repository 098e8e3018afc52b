// Package redistest runs real redis-server processes on 127.0.0.1 for the
// tests of the lock library, configured as production masters are.
//
// [StartServer] runs one redis-server process on 127.0.0.1 (Unix only), on a
// free port and in a directory of its own, with no persistence unless asked
// for. It serves what containers make awkward: TLS with client certificates
// ([WithTLS], certificates from [NewCA] made in the test), passwords and ACL
// users ([WithPassword], [WithACLUser], [WithDefaultUserOff]), replicas and
// failover ([WithReplicaOf], [Server.Promote], [Server.ReplicaOf]),
// persistence ([WithAOF], [WithRDB]) and eviction ([WithMaxMemory]):
//
//	ca := redistest.NewCA(t, "test CA")
//	m := redistest.StartServer(t, redistest.WithTLS(ca, redistest.ClientCertRequired))
//	r := redistest.StartServer(t, redistest.WithReplicaOf(m)) // synced on return
//	conn, err := redis.DialContext(ctx, "tcp", m.Addr(), redis.DialUseTLS(true),
//		redis.DialTLSConfig(ca.ClientTLSConfig(ca.ClientCert(t, "app"))))
//
// [Server.Pause] and [Server.Resume] send SIGSTOP and SIGCONT; [Server.Kill],
// [Server.Stop] and [Server.Start] act on the process, which comes back on
// the same port, in the same directory, with the same arguments. The harness
// talks to a server as its admin ([Server.Dial], [Server.Do], [Server.Info]),
// over TLS and with credentials as configured. The binary is
// $LOCK_REDIS_SERVER, else redis-server on PATH, else /usr/bin/redis-server
// (`make image` installs it); a missing binary fails the test. On Linux a
// server dies with the test binary.
package redistest
