"""The schema comparison, pure: what it lists, in what order, and what it leaves implied."""

from __future__ import annotations

import json

from commands.schema.compare import Change, compare
from commands.schema.model import Schema, schema_object


def users_table(*extra, email_type: str = "text"):
    return (schema_object("table", "users"),
            schema_object("column", "users.id", summary="type", type="bigint", not_null=True),
            schema_object("column", "users.email", summary="type", type=email_type, not_null=False),
            schema_object("constraint", "users.users_pkey", summary="definition", definition="PRIMARY KEY (id)",
                          validated=True),
            schema_object("index", "users_pkey", summary="definition", table="users", valid=True,
                          definition="CREATE UNIQUE INDEX users_pkey ON public.users USING btree (id)"),
            *extra)


def test_a_missing_table_is_one_difference_not_one_per_column_constraint_and_index():
    expected = Schema(objects=(schema_object("schema", "public"), *users_table()))
    live = Schema(objects=(schema_object("schema", "public"),))
    assert [(d.change, d.kind, d.name) for d in compare(expected, live)] == [(Change.REMOVED, "table", "users")]
    assert [(d.change, d.kind, d.name) for d in compare(live, expected)] == [(Change.ADDED, "table", "users")]


def test_differences_come_in_a_fixed_order_whatever_the_order_objects_were_read_in():
    expected = Schema(objects=users_table())
    changed = users_table(schema_object("index", "idx_email", summary="definition", table="users", valid=False,
                                        definition="CREATE INDEX idx_email ON public.users USING btree (email)"),
                          email_type="character varying(80)")
    first = compare(expected, Schema(objects=changed))
    assert first == compare(expected, Schema(objects=tuple(reversed(changed))))
    assert [(d.change.value, d.kind, d.name, d.attribute) for d in first] == [
        ("~", "column", "users.email", "type"), ("+", "index", "idx_email", None)]


def test_an_index_that_became_invalid_is_broken_and_a_validated_constraint_is_not():
    def index(valid: bool):
        return schema_object("index", "idx_x", summary="definition", table="t", valid=valid,
                             definition="CREATE INDEX idx_x ON public.t USING btree (a)")

    assert [(d.change, d.attribute) for d in compare(Schema(objects=(index(True),)), Schema(objects=(index(False),)))] \
        == [(Change.BROKEN, "valid")]
    # Valid where the files leave it NOT VALID: a difference, not breakage.
    def check(validated: bool):
        return schema_object("constraint", "t.c", summary="definition", definition="CHECK ((a > 0))",
                             validated=validated)

    assert [(d.change, d.expected, d.live) for d in compare(Schema(objects=(check(False),)),
                                                            Schema(objects=(check(True),)))] \
        == [(Change.CHANGED, False, True)]


def test_a_schema_survives_json_unchanged():
    schema = Schema(objects=users_table(), server_major=17)
    assert Schema.from_json(json.loads(json.dumps(schema.to_json()))) == schema
