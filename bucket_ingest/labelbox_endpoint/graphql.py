"""Just enough GraphQL (https://spec.graphql.org/October2021/) to answer what Labelbox's clients send.

Parses operations with variables, aliases, arguments (all literal kinds), nested selections and inline fragments;
validates every selected field against a declared schema before anything runs (as a real server does: a query
asking for a field Labelbox lacks fails here too); runs root fields through resolvers and projects the answers
onto the selections. Errors carry Labelbox's ``extensions.code`` so clients map them as they would live.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any


class GraphQLError(Exception):
    """An error entry: ``message`` and Labelbox's ``extensions.code`` (and ``exception.status`` when set)."""

    def __init__(self, message: str, code: str = "INTERNAL_SERVER_ERROR", status: int | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.code = code
        self.status = status

    def as_dict(self, path: list[str] | None = None) -> dict[str, Any]:
        extensions: dict[str, Any] = {"code": self.code}
        if self.status is not None:
            extensions["exception"] = {"status": self.status}
        entry: dict[str, Any] = {"message": self.message, "extensions": extensions}
        if path:
            entry["path"] = path
        return entry


def invalid(message: str) -> GraphQLError:
    return GraphQLError(message, "GRAPHQL_VALIDATION_FAILED", 400)


# --- syntax -----------------------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Variable:
    name: str


class EnumValue(str):
    """An enum literal (a bare name in value position)."""


@dataclass(slots=True)
class Field:
    name: str
    alias: str | None = None
    arguments: dict[str, Any] = field(default_factory=dict)
    selections: list[Field | InlineFragment] | None = None

    @property
    def key(self) -> str:
        return self.alias or self.name


@dataclass(slots=True)
class InlineFragment:
    type_condition: str | None
    selections: list[Field | InlineFragment]


@dataclass(slots=True)
class Operation:
    kind: str  # query | mutation
    name: str | None
    variables: dict[str, tuple[str, Any]]  # name → (type, default)
    selections: list[Field | InlineFragment]


_TOKEN = re.compile(
    r"""
    (?P<ignored>[\s,\ufeff]+|\#[^\n\r]*)
  | (?P<block>\"\"\"(?:\\\"\"\"|(?!\"\"\").)*\"\"\")
  | (?P<string>"(?:[^"\\\n]|\\.)*")
  | (?P<number>-?(?:0|[1-9][0-9]*)(?:\.[0-9]+)?(?:[eE][+-]?[0-9]+)?)
  | (?P<name>[_A-Za-z][_0-9A-Za-z]*)
  | (?P<spread>\.\.\.)
  | (?P<punct>[!$&():=@\[\]{}|])
    """,
    re.VERBOSE | re.DOTALL,
)


def _tokens(text: str) -> list[tuple[str, str]]:
    out, position = [], 0
    while position < len(text):
        match = _TOKEN.match(text, position)
        if match is None:
            raise GraphQLError(f'Syntax Error: Unexpected character "{text[position]}".', "GRAPHQL_PARSE_FAILED", 400)
        kind = match.lastgroup or ""
        if kind != "ignored":
            out.append((kind, match.group()))
        position = match.end()
    out.append(("eof", ""))
    return out


class _Parser:
    def __init__(self, text: str) -> None:
        self.tokens = _tokens(text)
        self.at = 0

    def peek(self, value: str | None = None, kind: str | None = None) -> bool:
        token_kind, token = self.tokens[self.at]
        return (value is None or token == value) and (kind is None or token_kind == kind)

    def take(self, value: str | None = None, kind: str | None = None) -> str:
        if not self.peek(value, kind) or self.peek(kind="eof"):
            token = self.tokens[self.at][1]
            expected = value or kind
            raise GraphQLError(
                f'Syntax Error: Expected "{expected}", found "{token or "<EOF>"}".', "GRAPHQL_PARSE_FAILED", 400
            )
        self.at += 1
        return self.tokens[self.at - 1][1]

    def document(self) -> list[Operation]:
        operations = []
        while not self.peek(kind="eof"):
            operations.append(self.operation())
        if not operations:
            raise GraphQLError("Syntax Error: Unexpected <EOF>.", "GRAPHQL_PARSE_FAILED", 400)
        return operations

    def operation(self) -> Operation:
        if self.peek("{"):
            return Operation("query", None, {}, self.selection_set())
        kind = self.take(kind="name")
        if kind not in ("query", "mutation"):
            raise GraphQLError(f'Syntax Error: Unexpected Name "{kind}".', "GRAPHQL_PARSE_FAILED", 400)
        name = self.take(kind="name") if self.peek(kind="name") else None
        variables: dict[str, tuple[str, Any]] = {}
        if self.peek("("):
            self.take("(")
            while not self.peek(")"):
                self.take("$")
                variable = self.take(kind="name")
                self.take(":")
                type_ = self.type_reference()
                default = None
                if self.peek("="):
                    self.take("=")
                    default = self.value(const=True)
                variables[variable] = (type_, default)
            self.take(")")
        return Operation(kind, name, variables, self.selection_set())

    def type_reference(self) -> str:
        if self.peek("["):
            self.take("[")
            inner = self.type_reference()
            self.take("]")
            text = f"[{inner}]"
        else:
            text = self.take(kind="name")
        if self.peek("!"):
            self.take("!")
            text += "!"
        return text

    def selection_set(self) -> list[Field | InlineFragment]:
        self.take("{")
        selections: list[Field | InlineFragment] = []
        while not self.peek("}"):
            if self.peek(kind="spread"):
                self.take(kind="spread")
                condition = None
                if self.peek("on", "name"):
                    self.take("on")
                    condition = self.take(kind="name")
                selections.append(InlineFragment(condition, self.selection_set()))
                continue
            name = self.take(kind="name")
            alias = None
            if self.peek(":"):
                self.take(":")
                alias, name = name, self.take(kind="name")
            arguments = {}
            if self.peek("("):
                self.take("(")
                while not self.peek(")"):
                    argument = self.take(kind="name")
                    self.take(":")
                    arguments[argument] = self.value()
                self.take(")")
            nested = self.selection_set() if self.peek("{") else None
            selections.append(Field(name, alias, arguments, nested))
        self.take("}")
        return selections

    def value(self, const: bool = False) -> Any:
        kind, token = self.tokens[self.at]
        if (kind, token) == ("punct", "$") and not const:
            self.take("$")
            return Variable(self.take(kind="name"))
        if (kind, token) == ("punct", "["):
            self.take("[")
            items = []
            while not self.peek("]"):
                items.append(self.value(const))
            self.take("]")
            return items
        if (kind, token) == ("punct", "{"):
            self.take("{")
            fields = {}
            while not self.peek("}"):
                name = self.take(kind="name")
                self.take(":")
                fields[name] = self.value(const)
            self.take("}")
            return fields
        self.at += 1
        if kind == "string":
            return json.loads(token)
        if kind == "block":
            return token[3:-3].replace('\\"""', '"""')
        if kind == "number":
            return float(token) if any(c in token for c in ".eE") else int(token)
        if kind == "name":
            return {"true": True, "false": False, "null": None}.get(token, EnumValue(token))
        raise GraphQLError(f'Syntax Error: Unexpected "{token or "<EOF>"}".', "GRAPHQL_PARSE_FAILED", 400)


def parse(text: str) -> list[Operation]:
    return _Parser(text).document()


def substitute(value: Any, variables: Mapping[str, Any]) -> Any:
    """A literal with its variables replaced by their values."""
    if isinstance(value, Variable):
        return variables.get(value.name)
    if isinstance(value, list):
        return [substitute(v, variables) for v in value]
    if isinstance(value, dict):
        return {k: substitute(v, variables) for k, v in value.items()}
    return value


def _variables_used(value: Any) -> set[str]:
    if isinstance(value, Variable):
        return {value.name}
    if isinstance(value, list):
        return set().union(*(_variables_used(v) for v in value)) if value else set()
    if isinstance(value, dict):
        return set().union(*(_variables_used(v) for v in value.values())) if value else set()
    return set()


# --- schema and execution ---------------------------------------------------------------------------------------

SCALARS = frozenset({"ID", "String", "Int", "Float", "Boolean", "DateTime", "Json", "Upload"})


@dataclass(frozen=True, slots=True)
class Schema:
    """Object types as {type: {field: type reference}} ("[T]" for lists); unions as {union: member types}."""

    types: Mapping[str, Mapping[str, str]]
    unions: Mapping[str, tuple[str, ...]] = field(default_factory=dict)

    def field_type(self, parent: str, name: str) -> str:
        fields = self.types.get(parent)
        if fields is None or name not in fields:
            raise invalid(f'Cannot query field "{name}" on type "{parent}".')
        return fields[name]

    def validate(self, selections: list[Field | InlineFragment], parent: str, used: set[str]) -> None:
        for selection in selections:
            if isinstance(selection, InlineFragment):
                condition = selection.type_condition or parent
                if condition != parent and condition not in self.unions.get(parent, ()):
                    raise invalid(
                        f'Fragment cannot be spread here as objects of type "{parent}" '
                        f'can never be of type "{condition}".'
                    )
                self.validate(selection.selections, condition, used)
                continue
            for value in selection.arguments.values():
                used |= _variables_used(value)
            if selection.name == "__typename":
                continue
            if parent in self.unions:
                raise invalid(f'Cannot query field "{selection.name}" on type "{parent}".')
            named = self.field_type(parent, selection.name).strip("[]!")
            if named in SCALARS:
                if selection.selections is not None:
                    raise invalid(
                        f'Field "{selection.name}" must not have a selection since type "{named}" has no subfields.'
                    )
            elif selection.selections is None:
                raise invalid(f'Field "{selection.name}" of type "{named}" must have a selection of subfields.')
            else:
                self.validate(selection.selections, named, used)


# A resolver: (arguments, context) → a plain value. Object values are dicts; a dict value may be a callable taking
# the field's arguments (for fields with arguments below the root, e.g. user.createdTasks).
Resolver = Callable[[dict[str, Any], Any], Any]


@dataclass(frozen=True, slots=True)
class Request:
    """One parsed and validated operation, ready to run."""

    operation: Operation
    variables: dict[str, Any]

    @property
    def name(self) -> str:
        return self.operation.name or ""

    def root_fields(self) -> list[Field]:
        return [s for s in self.operation.selections if isinstance(s, Field)]


def prepare(schema: Schema, text: str, variables: Mapping[str, Any] | None, operation_name: str | None) -> Request:
    operations = parse(text)
    if operation_name:
        chosen = [o for o in operations if o.name == operation_name]
        if not chosen:
            raise invalid(f'Unknown operation named "{operation_name}".')
        operation = chosen[0]
    elif len(operations) == 1:
        operation = operations[0]
    else:
        raise invalid("Must provide operation name if query contains multiple operations.")
    root = "Query" if operation.kind == "query" else "Mutation"
    used: set[str] = set()
    schema.validate(operation.selections, root, used)
    given = dict(variables or {})
    for name in sorted(used - set(operation.variables)):
        raise invalid(f'Variable "${name}" is not defined by operation "{operation.name or ""}".')
    values: dict[str, Any] = {}
    for name, (type_, default) in operation.variables.items():
        value = given.get(name, default)
        if value is None and type_.endswith("!"):
            raise invalid(f'Variable "${name}" of required type "{type_}" was not provided.')
        values[name] = value
    return Request(operation, values)


def execute(schema: Schema, request: Request, resolvers: Mapping[str, Resolver], context: Any) -> dict[str, Any]:
    """Run the root fields in order (as mutations run) and shape each answer by its selection."""
    root = "Query" if request.operation.kind == "query" else "Mutation"
    data: dict[str, Any] = {}
    errors: list[dict[str, Any]] = []
    for selection in _flatten(request.operation.selections, root):
        if selection.name == "__typename":
            data[selection.key] = root
            continue
        arguments = substitute(selection.arguments, request.variables)
        try:
            value = resolvers[selection.name](arguments, context)
            type_ = schema.field_type(root, selection.name)
            data[selection.key] = _project(schema, value, selection, type_, request.variables)
        except GraphQLError as exc:
            data[selection.key] = None
            errors.append(exc.as_dict([selection.key]))
    answer: dict[str, Any] = {"data": data}
    if errors:
        answer["errors"] = errors
    return answer


def _flatten(selections: list[Field | InlineFragment], typename: str) -> list[Field]:
    out: list[Field] = []
    for selection in selections:
        if isinstance(selection, InlineFragment):
            if selection.type_condition in (None, typename):
                out.extend(_flatten(selection.selections, typename))
        else:
            out.append(selection)
    return out


def _project(schema: Schema, value: Any, selection: Field, type_: str, variables: Mapping[str, Any]) -> Any:
    if value is None:
        return None
    bare = type_.rstrip("!")
    if bare.startswith("["):
        return [_project(schema, item, selection, bare[1:-1], variables) for item in value]
    if bare in SCALARS or selection.selections is None:
        return value
    typename = value.get("__typename", bare) if isinstance(value, dict) else bare
    out: dict[str, Any] = {}
    for child in _flatten(selection.selections, typename):
        if child.name == "__typename":
            out[child.key] = typename
            continue
        child_value = value.get(child.name)
        if callable(child_value):
            child_value = child_value(substitute(child.arguments, variables))
        out[child.key] = _project(schema, child_value, child, schema.field_type(typename, child.name), variables)
    return out
