package config_test

import (
	"fmt"

	"github.com/leverege/lock/config"
)

// The original's JSON, as in LOCK_CONFIG: absent options take their
// defaults, and durations are milliseconds.
func ExampleParse() {
	cfg, err := config.Parse([]byte(`{"namespace":"myApp","lockConfig":{
		"type":"redis",
		"connections":[{"host":"10.0.0.1","port":6379},{"host":"10.0.0.2","port":6379},{"host":"10.0.0.3","port":6379}],
		"lockOptions":{"retryCount":3,"retryDelay":250}}}`))
	if err != nil {
		fmt.Println(err)
		return
	}
	fmt.Println(cfg.Type, cfg.Namespace, len(cfg.Connections), "masters")
	fmt.Println("retries:", cfg.LockOptions.RetryCount, "every", cfg.LockOptions.RetryDelay)
	fmt.Println("drift factor (default):", cfg.LockOptions.DriftFactor)
	// Output:
	// redis myApp 3 masters
	// retries: 3 every 250ms
	// drift factor (default): 0.01
}

// A bad field is named as the JSON names it.
func ExampleParse_badField() {
	_, err := config.Parse([]byte(`{"type":"redis","connection":{"host":"10.0.0.1","port":6379},
		"lockOptions":{"retryDelay":-5}}`))
	fmt.Println(err)
	_, err = config.Parse([]byte(`{"type":"redis","connection":{"host":"10.0.0.1","Port":6379}}`))
	fmt.Println(err)
	// Output:
	// config: lockOptions.retryDelay: -5 ms must not be negative
	// config: connection.Port: unknown field: did you mean "port"?
}

// Passwords never show when a configuration is printed or logged.
func ExampleConnection_String() {
	fmt.Println(config.Connection{URL: "rediss://app:s3cret@redis.internal:6380/2"})
	fmt.Printf("%+v\n", config.Connection{Host: "10.0.0.1", Port: 6379, Username: "app", Password: "s3cret"})
	// Output:
	// { 0   0 <nil> rediss://app:xxxxx@redis.internal:6380/2}
	// {Host:10.0.0.1 Port:6379 Username:app Password:xxxxx DB:0 TLS:<nil> URL:}
}
