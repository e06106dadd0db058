"""After a rollback: every foreign key checked for orphans, and the app's health check read."""

from __future__ import annotations

import base64
import json
import socket
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import psycopg
import pytest

from commands.app.health import check_app_health
from commands.pg.integrity import Orphans, dependency_of, orphaned_rows


@pytest.fixture
def conn(database_url: str) -> Iterator[psycopg.Connection]:
    with psycopg.connect(database_url, autocommit=True) as conn:
        yield conn


def counts(conn: psycopg.Connection) -> dict[str, int]:
    return {o.constraint: o.rows for o in orphaned_rows(conn)}


# -- orphaned rows -------------------------------------------------------------------------

def test_database_without_foreign_keys_has_nothing_to_check(conn):
    conn.execute("CREATE TABLE plain (id int PRIMARY KEY); INSERT INTO plain VALUES (1)")
    assert orphaned_rows(conn) == []


def test_clean_foreign_keys_are_all_listed_with_zero(conn):
    conn.execute("""
        CREATE TABLE organizations (id int PRIMARY KEY);
        CREATE TABLE events (id int PRIMARY KEY, organization_id int REFERENCES organizations);
        CREATE TABLE places (id int PRIMARY KEY, organization_id int REFERENCES organizations);
        INSERT INTO organizations VALUES (1), (2);
        INSERT INTO events VALUES (1, 1), (2, 2);
        INSERT INTO places VALUES (1, 2);
    """)
    assert orphaned_rows(conn) == [
        Orphans(constraint="events_organization_id_fkey", table="events", columns=("organization_id",),
                references="organizations", referenced_columns=("id",), rows=0),
        Orphans(constraint="places_organization_id_fkey", table="places", columns=("organization_id",),
                references="organizations", referenced_columns=("id",), rows=0),
    ]


def test_orphans_under_a_not_valid_key_are_counted(conn):
    conn.execute("""
        CREATE TABLE organizations (id int PRIMARY KEY);
        CREATE TABLE events (id int PRIMARY KEY, organization_id int);
        INSERT INTO organizations VALUES (1);
        INSERT INTO events VALUES (1, 1), (2, 7), (3, 7), (4, 8);
        ALTER TABLE events ADD CONSTRAINT events_org FOREIGN KEY (organization_id)
            REFERENCES organizations NOT VALID;
    """)
    assert counts(conn) == {"events_org": 3}


def test_orphans_inserted_with_triggers_disabled_are_counted_and_sorted_first(conn):
    conn.execute("""
        CREATE TABLE organizations (id int PRIMARY KEY);
        CREATE TABLE events (id int PRIMARY KEY, organization_id int REFERENCES organizations);
        CREATE TABLE places (id int PRIMARY KEY, organization_id int REFERENCES organizations);
        INSERT INTO organizations VALUES (1);
        ALTER TABLE places DISABLE TRIGGER ALL;
        INSERT INTO places VALUES (1, 1), (2, 2), (3, 3);
        ALTER TABLE places ENABLE TRIGGER ALL;
    """)
    assert [(o.constraint, o.rows) for o in orphaned_rows(conn)] == [
        ("places_organization_id_fkey", 2), ("events_organization_id_fkey", 0)]


def test_rows_with_a_null_key_are_not_orphans(conn):
    conn.execute("""
        CREATE TABLE organizations (id int PRIMARY KEY);
        CREATE TABLE events (id int PRIMARY KEY, organization_id int);
        INSERT INTO events VALUES (1, NULL), (2, NULL), (3, 5);
        ALTER TABLE events ADD CONSTRAINT events_org FOREIGN KEY (organization_id)
            REFERENCES organizations NOT VALID;
    """)
    assert counts(conn) == {"events_org": 1}


def test_multi_column_key_is_matched_on_all_columns_in_key_order(conn):
    conn.execute("""
        CREATE TABLE orders (shop_id int, id int, PRIMARY KEY (shop_id, id));
        CREATE TABLE order_items (order_id int, shop int, sku text);
        INSERT INTO orders VALUES (1, 10), (2, 20);
        -- (10, 1) matches; (20, 1) has each value somewhere but not together; NULLs never match
        INSERT INTO order_items VALUES (10, 1, 'a'), (20, 1, 'b'), (30, 3, 'c'), (NULL, 1, 'd'), (99, NULL, 'e');
        ALTER TABLE order_items ADD CONSTRAINT items_order FOREIGN KEY (order_id, shop)
            REFERENCES orders (id, shop_id) NOT VALID;
    """)
    (items,) = orphaned_rows(conn)
    assert (items.columns, items.referenced_columns, items.rows) == (("order_id", "shop"), ("id", "shop_id"), 2)


def test_match_full_key_counts_a_partly_null_key(conn):
    conn.execute("""
        CREATE TABLE orders (shop_id int, id int, PRIMARY KEY (shop_id, id));
        CREATE TABLE order_items (shop_id int, order_id int);
        INSERT INTO orders VALUES (1, 10);
        INSERT INTO order_items VALUES (1, 10), (NULL, NULL), (1, NULL), (2, 10);
        ALTER TABLE order_items ADD CONSTRAINT items_order FOREIGN KEY (shop_id, order_id)
            REFERENCES orders MATCH FULL NOT VALID;
    """)
    assert counts(conn) == {"items_order": 2}


def test_other_schemas_are_qualified_and_odd_names_quoted(conn):
    conn.execute("""
        CREATE SCHEMA audit;
        CREATE TABLE "Orders" ("Order Id" int PRIMARY KEY);
        CREATE TABLE audit."Order Items" ("Order Id" int, "select" int);
        INSERT INTO "Orders" VALUES (1);
        INSERT INTO audit."Order Items" VALUES (1, 0), (2, 0);
        ALTER TABLE audit."Order Items" ADD CONSTRAINT "Items → Orders" FOREIGN KEY ("Order Id")
            REFERENCES "Orders" NOT VALID;
    """)
    assert orphaned_rows(conn) == [
        Orphans(constraint="Items → Orders", table='audit."Order Items"', columns=("Order Id",),
                references='"Orders"', referenced_columns=("Order Id",), rows=1)]


def test_keys_on_and_to_partitioned_tables_are_checked_once_across_partitions(conn):
    conn.execute("""
        CREATE TABLE regions (code text PRIMARY KEY) PARTITION BY LIST (code);
        CREATE TABLE regions_eu PARTITION OF regions FOR VALUES IN ('eu');
        CREATE TABLE regions_us PARTITION OF regions FOR VALUES IN ('us');
        CREATE TABLE organizations (id int PRIMARY KEY);
        CREATE TABLE events (id int, day date, organization_id int REFERENCES organizations,
                             region text REFERENCES regions) PARTITION BY RANGE (day);
        CREATE TABLE events_2025 PARTITION OF events FOR VALUES FROM ('2025-01-01') TO ('2026-01-01');
        CREATE TABLE events_2026 PARTITION OF events FOR VALUES FROM ('2026-01-01') TO ('2027-01-01');
        INSERT INTO organizations VALUES (1);
        INSERT INTO regions VALUES ('eu'), ('us');
    """)
    # A restore runs as replica, which skips the foreign keys' triggers.
    conn.execute("SET session_replication_role = replica")
    conn.execute("""
        INSERT INTO events VALUES (1, '2025-05-01', 1, 'eu'), (2, '2025-06-01', 2, 'us'),
                                  (3, '2026-05-01', 2, 'ap'), (4, '2026-06-01', 3, NULL);
    """)
    conn.execute("RESET session_replication_role")
    assert [(o.constraint, o.table, o.references, o.rows) for o in orphaned_rows(conn)] == [
        ("events_organization_id_fkey", "events", "organizations", 3),
        ("events_region_fkey", "events", "regions", 1),
    ]


def test_check_reads_in_a_read_only_transaction_and_leaves_the_connection_idle(conn):
    conn.execute("CREATE TABLE a (id int PRIMARY KEY); CREATE TABLE b (a_id int REFERENCES a)")
    orphaned_rows(conn)
    assert conn.info.transaction_status == psycopg.pq.TransactionStatus.IDLE


# -- the dependency behind a foreign-key-order failure --------------------------------------

@pytest.fixture
def users_and_orders(conn):
    conn.execute("""
        CREATE TABLE users (id int PRIMARY KEY);
        CREATE TABLE orders (id int PRIMARY KEY, user_id int REFERENCES users);
        INSERT INTO users VALUES (1); INSERT INTO orders VALUES (1, 1);
    """)
    return conn


def failure(conn: psycopg.Connection, statement: str) -> psycopg.Error:
    with pytest.raises(psycopg.Error) as caught:
        conn.execute(statement)
    return caught.value


def test_dropping_a_referenced_table_names_the_table_to_drop_first(users_and_orders):
    err = failure(users_and_orders, "DROP TABLE users")
    assert err.sqlstate == "2BP01" and err.diag.constraint_name is None
    assert dependency_of(users_and_orders, err.sqlstate, err.diag.constraint_name,
                         detail=err.diag.message_detail) == (
        "orders.user_id references users.id (constraint orders_user_id_fkey): drop or roll back orders first")


def test_foreign_key_violation_names_the_order_to_write_in(users_and_orders):
    err = failure(users_and_orders, "DELETE FROM users")
    assert err.sqlstate == "23503"
    assert dependency_of(users_and_orders, err.sqlstate, err.diag.constraint_name) == (
        "orders.user_id references users.id (constraint orders_user_id_fkey): "
        "write users rows before orders rows, and remove them in the reverse order")


def test_dependency_is_unknown_for_other_errors_and_unknown_constraints(users_and_orders):
    assert dependency_of(users_and_orders, "23505", "orders_pkey") is None
    assert dependency_of(users_and_orders, "23503", "no_such_constraint") is None
    assert dependency_of(users_and_orders, "2BP01", None) is None


# -- the application's health check ---------------------------------------------------------

HEALTHY = {"status": "pass", "checks": {"migrations": {
    "status": "pass", "message": "Migrations applied successfully (version 5)", "latency_ms": 12,
    "details": {"version": 5, "dirty": False}}}}
FAILING = {"status": "fail", "checks": {"migrations": {
    "status": "fail", "message": "Migration 6 failed and left the database dirty", "latency_ms": 3,
    "details": {"version": 6, "dirty": True}}}}
ANSWERS = {
    "/health": (200, "application/json", json.dumps(HEALTHY)),
    "/failing": (503, "application/json", json.dumps(FAILING)),
    "/html": (200, "text/html", "<html><body>It works!</body></html>"),
    "/other": (200, "application/json", json.dumps({"ok": True, "checks": {"db": "up"}})),
}


class _App(BaseHTTPRequestHandler):
    def do_GET(self):
        if self.path == "/moved":
            self.send_response(301)
            self.send_header("Location", "/health")
            self.end_headers()
            return
        if self.path in ("/to-file", "/to-ftp"):
            self.send_response(302)
            self.send_header("Location", "file:///etc/passwd" if self.path == "/to-file" else "ftp://ops:s3cret@example.com/h")
            self.end_headers()
            return
        if self.path == "/private":
            expected = "Basic " + base64.b64encode(b"ops:s3cret").decode()
            code, kind, body = (ANSWERS["/health"] if self.headers.get("Authorization") == expected
                                else (401, "text/plain", "who are you"))
        else:
            code, kind, body = ANSWERS.get(self.path, (404, "text/plain", "not found"))
        data = body.encode()
        self.send_response(code)
        self.send_header("Content-Type", kind)
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def log_message(self, *args):
        pass


@pytest.fixture(scope="module")
def app() -> Iterator[str]:
    server = ThreadingHTTPServer(("127.0.0.1", 0), _App)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}"
    server.shutdown()
    server.server_close()
    thread.join()


def test_healthy_app_reports_its_migrations_version(app):
    health = check_app_health(app + "/health")
    assert (health.reachable, health.http_status, health.status, health.migrations_status,
            health.migrations_version, health.migrations_dirty) == (True, 200, "pass", "pass", 5, False)
    assert health.message == "HTTP 200; migrations pass: Migrations applied successfully (version 5)"
    assert health.url == app + "/health" and health.latency_ms > 0


def test_failing_app_answering_503_is_read_not_raised(app):
    health = check_app_health(app + "/failing")
    assert (health.reachable, health.http_status, health.status, health.migrations_status,
            health.migrations_version, health.migrations_dirty) == (True, 503, "fail", "fail", 6, True)
    assert health.message == "HTTP 503; migrations fail: Migration 6 failed and left the database dirty"


def test_body_that_is_not_json_is_reported(app):
    health = check_app_health(app + "/html")
    assert (health.reachable, health.http_status, health.status, health.migrations_status) == (True, 200, None, None)
    assert health.message == "HTTP 200, but the body is not JSON: '<html><body>It works!</body></html>'"


def test_json_of_another_shape_is_reported(app):
    health = check_app_health(app + "/other")
    assert (health.reachable, health.migrations_status, health.migrations_version) == (True, None, None)
    assert health.message == "HTTP 200, but the body has no checks.migrations object"


def test_closed_port_is_unreachable_and_the_password_masked():
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    health = check_app_health(f"http://ops:s3cret@127.0.0.1:{port}/health", timeout=2)
    assert (health.reachable, health.http_status, health.migrations_status) == (False, None, None)
    assert health.url == f"http://ops:****@127.0.0.1:{port}/health"
    assert health.message.startswith(f"Could not reach http://ops:****@127.0.0.1:{port}/health: ")
    assert "s3cret" not in repr(health)


def test_credentials_in_the_url_are_sent_as_basic_auth(app):
    health = check_app_health(app.replace("http://", "http://ops:s3cret@") + "/private")
    assert (health.http_status, health.migrations_version) == (200, 5)
    assert "s3cret" not in repr(health)


def test_non_http_url_is_refused():
    health = check_app_health("file:///etc/passwd")
    assert (health.reachable, health.http_status) == (False, None)
    assert health.message == "file:///etc/passwd is not an http or https URL; the health check is only fetched over HTTP"


def test_redirect_to_another_http_url_is_followed(app):
    assert check_app_health(app + "/moved").migrations_version == 5


@pytest.mark.parametrize("path, target", [("/to-file", "file:///etc/passwd"),
                                          ("/to-ftp", "ftp://ops:****@example.com/h")])
def test_redirect_to_another_scheme_is_not_followed(app, path, target):
    health = check_app_health(app + path)
    assert (health.reachable, health.http_status) == (False, None)
    assert health.message == f"Did not follow {app}{path}: it redirected to {target}; only http and https are followed"
