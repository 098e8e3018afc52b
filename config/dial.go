package config

import (
	"context"
	"fmt"
	"time"

	"github.com/gomodule/redigo/redis"
)

// Dial connects to the master as a Locker built by lock.Create does: with
// its credentials, database and TLS (or its URL), the connection bounded
// by ctx, and each read and write by timeout (when positive).
//
// Its errors never show the password: Dial reads the URL itself rather
// than through redigo's DialURL, whose errors quote the URL whole.
// redigo's own errors (the network's, and the server's replies to AUTH
// and SELECT, such as "WRONGPASS invalid username-password pair") carry
// no secret and are returned as they are.
func (c Connection) Dial(ctx context.Context, timeout time.Duration) (redis.Conn, error) {
	e, err := c.endpoint()
	if err != nil {
		return nil, fmt.Errorf("config: %w", err)
	}
	opts := []redis.DialOption{
		redis.DialUsername(e.username),
		redis.DialPassword(e.password),
		redis.DialDatabase(e.db),
		redis.DialUseTLS(e.tls),
	}
	if timeout > 0 {
		opts = append(opts, redis.DialReadTimeout(timeout), redis.DialWriteTimeout(timeout))
	}
	return redis.DialContext(ctx, "tcp", e.addr(), opts...)
}
