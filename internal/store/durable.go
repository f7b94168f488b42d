package store

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/redis/go-redis/v9"
)

// ErrNotReplicated means a write was applied by the master but no replica
// confirmed it within the timeout: a failover now could lose it.
var ErrNotReplicated = errors.New("write not confirmed by a replica")

// MaxWait bounds RunDurable's timeout: the WAIT reply must come back within
// the client's read timeout (3 s by default).
const MaxWait = 2 * time.Second

// RunDurable runs script on the master that owns keys[0] and returns only
// once replicas replicas have confirmed the write (WAIT replicas timeout,
// sent on the same connection right after the script), or with an error
// wrapping ErrNotReplicated. A script that wrote nothing confirms at once.
//
// Redis replicates asynchronously: without this, a write the master
// acknowledged can be lost if the master dies before its replica has it.
func RunDurable(ctx context.Context, rdb redis.UniversalClient, sc *redis.Script, replicas int, timeout time.Duration, keys []string, args ...any) *redis.Cmd {
	timeout = min(timeout, MaxWait)
	var last *redis.Cmd
	for attempt := 0; attempt < 4; attempt++ {
		if attempt > 0 {
			select {
			case <-ctx.Done():
				return errCmd(ctx, ctx.Err())
			case <-time.After(time.Duration(attempt) * 50 * time.Millisecond):
			}
		}
		node, err := masterFor(ctx, rdb, keys[0])
		if err != nil {
			return errCmd(ctx, err)
		}
		var cmd *redis.Cmd
		var wait *redis.Cmd
		_, _ = node.Pipelined(ctx, func(p redis.Pipeliner) error {
			cmd = p.EvalSha(ctx, sc.Hash(), keys, args...)
			wait = p.Do(ctx, "WAIT", replicas, timeout.Milliseconds())
			return nil
		})
		last = cmd
		switch err := cmd.Err(); {
		case err == nil || errors.Is(err, redis.Nil):
		case redis.HasErrorPrefix(err, "NOSCRIPT"):
			if lerr := sc.Load(ctx, node).Err(); lerr != nil {
				return errCmd(ctx, lerr)
			}
			continue
		case isMoved(err) || redis.IsTryAgainError(err) || redis.IsClusterDownError(err):
			if cc, ok := rdb.(*redis.ClusterClient); ok {
				cc.ReloadState(ctx)
			}
			continue
		default:
			return cmd
		}
		if n, err := wait.Int64(); err != nil {
			cmd.SetErr(fmt.Errorf("%w: WAIT: %w", ErrNotReplicated, err))
		} else if n < int64(replicas) {
			cmd.SetErr(fmt.Errorf("%w: %d of %d replicas within %s", ErrNotReplicated, n, replicas, timeout))
		}
		return cmd
	}
	return last
}

func isMoved(err error) bool {
	_, moved := redis.IsMovedError(err)
	_, ask := redis.IsAskError(err)
	return moved || ask
}

func errCmd(ctx context.Context, err error) *redis.Cmd {
	c := redis.NewCmd(ctx)
	c.SetErr(err)
	return c
}

// masterFor returns the client of the node that owns key: the client
// itself for a single server or Sentinel, the slot's master for a cluster.
func masterFor(ctx context.Context, rdb redis.UniversalClient, key string) (*redis.Client, error) {
	switch c := rdb.(type) {
	case *redis.Client:
		return c, nil
	case *redis.ClusterClient:
		n, err := c.MasterForKey(ctx, key)
		if err != nil {
			return nil, fmt.Errorf("master for %s: %w", key, err)
		}
		return n, nil
	default:
		return nil, fmt.Errorf("waiting for replicas needs a single-server, sentinel or cluster client, not %T", rdb)
	}
}
