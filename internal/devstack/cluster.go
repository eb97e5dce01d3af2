package devstack

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"net"
	"net/url"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"github.com/jackc/pgx/v5"
	"go.temporal.io/api/serviceerror"
	"go.temporal.io/api/workflowservice/v1"
	"go.temporal.io/sdk/client"
	"google.golang.org/protobuf/types/known/durationpb"

	"github.com/dsrflow/dsrflow/internal/app"
	"github.com/dsrflow/dsrflow/internal/sqldb"
	"github.com/dsrflow/dsrflow/internal/sqldb/sqldbtest"
)

// ClusterServices are Temporal's services, in the order a Cluster starts
// them: the first to start on a fresh database writes the cluster metadata,
// and services started together race on it.
var ClusterServices = []string{"history", "matching", "frontend", "worker"}

// ClusterOptions configure StartCluster.
type ClusterOptions struct {
	// Dir holds the services' logs.
	Dir string
	// Shards is numHistoryShards (default 4).
	Shards int
	// Postgres is a postgres:// URL of the server (any database on it) where
	// the cluster's databases are created: by default the server of the
	// PostgreSQL tests (DSR_TEST_POSTGRES, else 127.0.0.1:5432 as postgres).
	Postgres string
	// MetricsPorts gives each service a Prometheus /metrics port (none otherwise).
	MetricsPorts bool
}

// Cluster is a Temporal cluster for tests and benchmarks: the server built by
// `make tools` (bin/temporal-server, never a download), its four services as
// separate processes on free loopback ports, configured from
// scripts/cluster/temporal.yaml (as `make cluster` is), on fresh PostgreSQL
// databases that Stop drops.
type Cluster struct {
	// Address is the frontend's host:port.
	Address string
	// LedgerDSN is the postgres:// URL of an empty database created with the
	// cluster, for dsrflow's ledger (DSR_DB).
	LedgerDSN string
	// Services are the running service processes by name (ClusterServices).
	Services map[string]*Process
	// Metrics are the services' /metrics URLs by name, with MetricsPorts.
	Metrics map[string]string

	dir       string
	root      string
	server    string
	env       []string
	admin     string // URL of the server's maintenance database
	databases []string
}

// StartCluster creates the databases and schemas, starts the services one by
// one, registers the default namespace and dsrflow's search attributes, and
// waits until the frontend answers. On error, whatever started is stopped and
// the databases are dropped.
func StartCluster(ctx context.Context, o ClusterOptions) (*Cluster, error) {
	server, err := Bin("temporal-server")
	if err != nil {
		return nil, err
	}
	sqlTool, err := Bin("temporal-sql-tool")
	if err != nil {
		return nil, err
	}
	root, err := RepoRoot()
	if err != nil {
		return nil, err
	}
	if o.Shards == 0 {
		o.Shards = 4
	}
	if o.Postgres == "" {
		o.Postgres = os.Getenv(sqldbtest.EnvPostgres)
	}
	if o.Postgres == "" || o.Postgres == "skip" {
		o.Postgres = sqldbtest.DefaultPostgres
	}
	pg, err := pgx.ParseConfig(o.Postgres)
	if err != nil {
		return nil, fmt.Errorf("devstack: cluster PostgreSQL %s: %w", sqldb.Redact(o.Postgres), err)
	}
	c := &Cluster{
		Services: map[string]*Process{}, Metrics: map[string]string{},
		dir: o.Dir, root: root, server: server,
		admin: withDatabase(o.Postgres, "postgres"),
	}
	var suffix [6]byte
	_, _ = rand.Read(suffix[:])
	prefix := "dsrflow_test_" + hex.EncodeToString(suffix[:])
	temporalDB, visibilityDB, ledgerDB := prefix+"_temporal", prefix+"_temporal_visibility", prefix+"_ledger"
	if err := c.createDatabases(ctx, temporalDB, visibilityDB, ledgerDB); err != nil {
		c.Stop()
		return nil, err
	}
	c.LedgerDSN = withDatabase(o.Postgres, ledgerDB)
	for _, s := range []struct{ db, schema string }{
		{temporalDB, "postgresql/v12/temporal"}, {visibilityDB, "postgresql/v12/visibility"},
	} {
		for _, args := range [][]string{{"setup-schema", "-v", "0.0"}, {"update-schema", "--schema-name", s.schema}} {
			if err := c.sqlTool(ctx, sqlTool, pg, s.db, args...); err != nil {
				c.Stop()
				return nil, err
			}
		}
	}

	c.env = []string{
		"CLUSTER_PG_ADDR=" + net.JoinHostPort(pg.Host, strconv.Itoa(int(pg.Port))),
		"CLUSTER_PG_USER=" + pg.User, "CLUSTER_PG_PASSWORD=" + pg.Password,
		"CLUSTER_DB=" + temporalDB, "CLUSTER_VISIBILITY_DB=" + visibilityDB,
		"CLUSTER_SHARDS=" + strconv.Itoa(o.Shards),
		"CLUSTER_DYNAMIC_CONFIG=" + filepath.Join(root, "scripts", "cluster", "dynamicconfig.yaml"),
	}
	for _, name := range ClusterServices {
		keys := []string{"CLUSTER_" + strings.ToUpper(name) + "_PORT", "CLUSTER_" + strings.ToUpper(name) + "_MEMBERSHIP_PORT"}
		if name == "frontend" {
			keys = append(keys, "CLUSTER_FRONTEND_HTTP_PORT")
		}
		for _, key := range keys {
			addr, err := FreeAddr()
			if strings.HasSuffix(key, "_MEMBERSHIP_PORT") {
				addr, err = freeMembershipAddr()
			}
			if err != nil {
				c.Stop()
				return nil, err
			}
			_, port, _ := net.SplitHostPort(addr)
			c.env = append(c.env, key+"="+port)
			if key == "CLUSTER_FRONTEND_PORT" {
				c.Address = addr
			}
		}
		if o.MetricsPorts {
			addr, err := FreeAddr()
			if err != nil {
				c.Stop()
				return nil, err
			}
			c.Metrics[name] = "http://" + addr + "/metrics"
		}
	}
	for _, name := range ClusterServices {
		if err := c.StartService(ctx, name); err != nil {
			c.Stop()
			return nil, err
		}
	}
	if err := c.registerNamespace(ctx); err != nil {
		c.Stop()
		return nil, err
	}
	return c, nil
}

// StartService starts (or restarts, after Kill) one of ClusterServices and
// waits until it answers: the frontend through a health check, history and
// matching by listening on their gRPC port, the worker on its membership port.
func (c *Cluster) StartService(ctx context.Context, name string) error {
	env := append([]string(nil), c.env...)
	if m := c.Metrics[name]; m != "" {
		u, _ := url.Parse(m)
		env = append(env, "CLUSTER_METRICS_PORT="+u.Port())
	}
	p, err := Start("temporal-"+name, c.dir, c.server, env,
		"--root", c.root, "--config", filepath.Join("scripts", "cluster"), "--env", "temporal",
		"--allow-no-auth", "start", "--service", name)
	if err != nil {
		return err
	}
	c.Services[name] = p
	// Temporal's worker service serves no gRPC: its membership port shows it up.
	port := "CLUSTER_" + strings.ToUpper(name) + "_PORT"
	if name == "worker" {
		port = "CLUSTER_WORKER_MEMBERSHIP_PORT"
	}
	addr := "127.0.0.1:" + EnvValue(c.env, port)
	deadline := time.Now().Add(90 * time.Second)
	for {
		var err error
		if name == "frontend" {
			err = checkHealth(ctx, addr)
		} else {
			var conn net.Conn
			if conn, err = net.DialTimeout("tcp", addr, time.Second); err == nil {
				conn.Close()
			}
		}
		if err == nil {
			return nil
		}
		if p.Exited() || time.Now().After(deadline) {
			return fmt.Errorf("devstack: Temporal's %s service did not start: %v\n%s", name, err, tail(p.Log(), 3000))
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(200 * time.Millisecond):
		}
	}
}

func checkHealth(ctx context.Context, addr string) error {
	tc, err := client.Dial(client.Options{HostPort: addr})
	if err != nil {
		return err
	}
	defer tc.Close()
	_, err = tc.CheckHealth(ctx, &client.CheckHealthRequest{})
	return err
}

// registerNamespace creates the default namespace and dsrflow's search
// attributes, retrying until the frontend's namespace cache has it.
func (c *Cluster) registerNamespace(ctx context.Context) error {
	tc, err := client.Dial(client.Options{HostPort: c.Address})
	if err != nil {
		return fmt.Errorf("devstack: dial the cluster: %w", err)
	}
	defer tc.Close()
	_, err = tc.WorkflowService().RegisterNamespace(ctx, &workflowservice.RegisterNamespaceRequest{
		Namespace: "default", WorkflowExecutionRetentionPeriod: durationpb.New(24 * time.Hour),
	})
	var exists *serviceerror.NamespaceAlreadyExists
	if err != nil && !errors.As(err, &exists) {
		return fmt.Errorf("devstack: register the default namespace: %w", err)
	}
	deadline := time.Now().Add(60 * time.Second)
	for {
		err := app.RegisterSearchAttributes(ctx, tc, "default")
		if err == nil {
			return nil
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("devstack: the cluster's default namespace: %w", err)
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(500 * time.Millisecond):
		}
	}
}

// Stop stops the services, newest first, and drops the databases.
func (c *Cluster) Stop() {
	for i := len(ClusterServices) - 1; i >= 0; i-- {
		if p := c.Services[ClusterServices[i]]; p != nil {
			p.Stop()
		}
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	for _, db := range c.databases {
		_ = c.exec(ctx, "DROP DATABASE IF EXISTS "+pgx.Identifier{db}.Sanitize()+" WITH (FORCE)")
	}
}

// TerminateConnections ends every connection to the cluster's databases, the
// ledger's included, with pg_terminate_backend (as a PostgreSQL failover or a
// network cut would), and returns how many it ended.
func (c *Cluster) TerminateConnections(ctx context.Context) (int, error) {
	db, err := sqldb.Open(ctx, c.admin)
	if err != nil {
		return 0, err
	}
	defer db.Close()
	var n int
	err = db.QueryRowContext(ctx, `SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity
		WHERE datname = ANY($1) AND pid <> pg_backend_pid()`, c.databases).Scan(&n)
	if err != nil {
		return 0, fmt.Errorf("devstack: terminate the cluster's connections: %w", err)
	}
	return n, nil
}

// Logs returns the tail of every service's log, for failure messages.
func (c *Cluster) Logs() string {
	out := ""
	for _, name := range ClusterServices {
		if p := c.Services[name]; p != nil {
			out += fmt.Sprintf("--- temporal-%s log ---\n%s\n", name, tail(p.Log(), 3000))
		}
	}
	return out
}

func (c *Cluster) createDatabases(ctx context.Context, names ...string) error {
	for _, db := range names {
		if err := c.exec(ctx, "CREATE DATABASE "+pgx.Identifier{db}.Sanitize()); err != nil {
			return fmt.Errorf("devstack: PostgreSQL at %s is not usable for a cluster: %w", sqldb.Redact(c.admin), err)
		}
		c.databases = append(c.databases, db)
	}
	return nil
}

// exec runs one statement on the server's maintenance database.
func (c *Cluster) exec(ctx context.Context, stmt string) error {
	db, err := sqldb.Open(ctx, c.admin)
	if err != nil {
		return err
	}
	defer db.Close()
	_, err = db.ExecContext(ctx, stmt)
	return err
}

// sqlTool runs bin/temporal-sql-tool on database db (the password through its environment).
func (c *Cluster) sqlTool(ctx context.Context, bin string, pg *pgx.ConnConfig, db string, args ...string) error {
	full := append([]string{"--plugin", "postgres12", "--ep", pg.Host, "--port", strconv.Itoa(int(pg.Port)),
		"--user", pg.User, "--db", db}, args...)
	name := "temporal-sql-tool"
	p, err := Start(name, c.dir, bin, []string{"SQL_PASSWORD=" + pg.Password}, full...)
	if err != nil {
		return err
	}
	select {
	case <-p.done:
	case <-ctx.Done():
		p.Kill()
		return ctx.Err()
	}
	if p.err != nil {
		return fmt.Errorf("devstack: temporal-sql-tool %v on %s: %w\n%s", args, db, p.err, tail(p.Log(), 2000))
	}
	return nil
}

// freeMembershipAddr returns a free loopback address whose port Temporal can
// store: its cluster_membership table keeps ports as SMALLINT (below 32768),
// while the kernel hands out ephemeral ports above that.
func freeMembershipAddr() (string, error) {
	var b [2]byte
	for range 100 {
		_, _ = rand.Read(b[:])
		port := 20000 + int(b[0])<<8%12000 + int(b[1])
		l, err := net.Listen("tcp", net.JoinHostPort("127.0.0.1", strconv.Itoa(port)))
		if err == nil {
			addr := l.Addr().String()
			l.Close()
			return addr, nil
		}
	}
	return "", errors.New("devstack: no free port below 32768 for Temporal's membership")
}

// withDatabase returns the postgres:// URL dsn with its database replaced.
func withDatabase(dsn, db string) string {
	u, err := url.Parse(dsn)
	if err != nil {
		return dsn
	}
	u.Path = "/" + db
	q := u.Query()
	q.Del("search_path")
	u.RawQuery = q.Encode()
	return u.String()
}
