"""Every example in an OpenAPI 3.1 document is valid against the schema it illustrates.

openapi-spec-validator checks the document's shape, not whether its examples fit their
schemas; a reader pastes examples, so they must. Checks request and response media-type
`example`/`examples` and every `example`/`examples` inside a schema (JSON Schema 2020-12,
formats such as date-time and email asserted). Prints each mismatch; exits 1 if any.
Usage: python spec-examples.py openapi.json   (run by scripts/spec-check)
"""

import copy
import json
import sys

from jsonschema import Draft202012Validator, FormatChecker
from referencing import Registry, Resource
from referencing.jsonschema import DRAFT202012

BASE = "urn:vouch:openapi"


def absolute(schema):
    """The schema with its document-relative `$ref`s made absolute (`urn:...#/...`)."""
    if isinstance(schema, dict):
        return {
            k: (BASE + v if k == "$ref" and isinstance(v, str) and v.startswith("#") else absolute(v))
            for k, v in schema.items()
        }
    if isinstance(schema, list):
        return [absolute(v) for v in schema]
    return schema


def main(path):
    with open(path, encoding="utf-8") as f:
        spec = json.load(f)
    registry = Registry().with_resource(BASE, Resource(contents=spec, specification=DRAFT202012))
    checker = FormatChecker()
    failures = []
    checked = 0

    def check(where, schema, value):
        nonlocal checked
        checked += 1
        schema = absolute(copy.deepcopy(schema))
        validator = Draft202012Validator(schema, registry=registry, format_checker=checker)
        for error in validator.iter_errors(value):
            at = "/".join(str(p) for p in error.absolute_path) or "(root)"
            failures.append(f"{where}: at {at}: {error.message}")

    def media(where, content):
        for media_type, body in (content or {}).items():
            schema = body.get("schema")
            if schema is None:
                continue
            if "example" in body:
                check(f"{where} {media_type} example", schema, body["example"])
            for name, ex in (body.get("examples") or {}).items():
                if "value" in ex:
                    check(f"{where} {media_type} examples.{name}", schema, ex["value"])

    def schemas(where, node):
        if isinstance(node, dict):
            bare = {k: v for k, v in node.items() if k not in ("example", "examples")}
            if "example" in node:
                check(f"{where} example", bare, node["example"])
            if isinstance(node.get("examples"), list):
                for i, ex in enumerate(node["examples"]):
                    check(f"{where} examples[{i}]", bare, ex)
            for k, v in node.items():
                if k not in ("example", "examples"):
                    schemas(f"{where}/{k}", v)
        elif isinstance(node, list):
            for i, v in enumerate(node):
                schemas(f"{where}/{i}", v)

    for p, item in spec.get("paths", {}).items():
        for method, op in item.items():
            if not isinstance(op, dict) or "responses" not in op:
                continue
            where = f"{method.upper()} {p}"
            media(f"{where} request", (op.get("requestBody") or {}).get("content"))
            for status, response in op["responses"].items():
                media(f"{where} {status}", response.get("content"))
            for param in op.get("parameters", []):
                if "example" in param and "schema" in param:
                    check(f"{where} parameter {param.get('name')}", param["schema"], param["example"])
    schemas("#/components/schemas", spec.get("components", {}).get("schemas", {}))

    for failure in failures:
        print(failure)
    print(f"{checked} examples checked, {len(failures)} invalid")
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1]))
