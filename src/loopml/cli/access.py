"""``loopml projects`` and ``loopml keys``."""

from __future__ import annotations

import json

import typer

from loopml.cli.context import state
from loopml.cli.output import console, fields, print_json, table
from loopml.core.enums import Role
from loopml.core.errors import InvalidInput
from loopml.core.schemas import ApiKey

projects_app = typer.Typer(help="Create and list projects.", no_args_is_help=True)
keys_app = typer.Typer(help="Create, list and revoke API keys.", no_args_is_help=True)

JSON = typer.Option(False, "--json", help="Print machine-readable JSON.")


@projects_app.command("create")
def create_project(
    ctx: typer.Context, name: str, description: str = "", as_json: bool = JSON
) -> None:
    """Create a project."""
    project = state(ctx).client().projects.create(name, description)
    if as_json:
        print_json(project)
    else:
        console.print(f"created project [bold]{project.name}[/]")


@projects_app.command("list")
def list_projects(ctx: typer.Context, as_json: bool = JSON) -> None:
    """List the projects you hold a role in."""
    items = state(ctx).client().projects.list()
    if as_json:
        print_json(items)
        return
    rows = [(p.name, p.description, p.created_at.strftime("%Y-%m-%d %H:%M")) for p in items]
    table("projects", ["name", "description", "created"], rows)


@projects_app.command("show")
def show_project(ctx: typer.Context, name: str, as_json: bool = JSON) -> None:
    """Show one project."""
    project = state(ctx).client().projects.get(name)
    if as_json:
        print_json(project)
    else:
        fields(f"project {project.name}", project.model_dump())


@projects_app.command("set")
def set_project(
    ctx: typer.Context,
    name: str,
    description: str = typer.Option(None, help="A new description."),
    label_review: bool = typer.Option(
        None,
        "--label-review/--no-label-review",
        help="Whether labels wait for a reviewer (another key) before training.",
    ),
    gates: str = typer.Option(
        None,
        help='Quality gates as JSON, e.g. \'{"min_score": 0.9, "auto_deploy": "churn"}\' '
        "({} removes them).",
    ),
    as_json: bool = JSON,
) -> None:
    """Change a project's description, label review or quality gates."""
    parsed = None
    if gates is not None:
        try:
            parsed = json.loads(gates)
        except ValueError:
            raise InvalidInput(f"--gates is not JSON: {gates!r}", field="--gates") from None
        if not isinstance(parsed, dict):
            raise InvalidInput("--gates must be a JSON object", field="--gates")
    project = (
        state(ctx)
        .client()
        .projects.update(name, description, label_review=label_review, gates=parsed)
    )
    if as_json:
        print_json(project)
    else:
        fields(f"project {project.name}", project.model_dump())


def _parse_roles(values: list[str]) -> dict[str, Role]:
    roles = {}
    for value in values:
        project, sep, role = value.partition("=")
        if not sep or role not in Role.__members__:
            raise InvalidInput(
                f"--role {value!r}: expected PROJECT=ROLE with ROLE one of "
                f"{', '.join(Role.__members__)}",
                field="--role",
            )
        roles[project] = Role(role)
    return roles


def _roles_text(key: ApiKey) -> str:
    parts = [f"*={key.global_role.value}"] if key.global_role else []
    parts += [f"{p}={r.value}" for p, r in sorted(key.project_roles.items())]
    return ", ".join(parts)


@keys_app.command("create")
def create_key(
    ctx: typer.Context,
    name: str,
    admin: bool = typer.Option(False, "--admin", help="Admin in every project."),
    role: list[str] = typer.Option([], "--role", help="PROJECT=ROLE, repeatable."),
    as_json: bool = JSON,
) -> None:
    """Create an API key; its secret is printed this once only."""
    created = state(ctx).client().keys.create(name, admin=admin, roles=_parse_roles(role))
    if as_json:
        print_json(created)
        return
    console.print(
        f"created key [bold]{created.key.name}[/] ({created.key.id}), roles: "
        f"{_roles_text(created.key) or 'none'}"
    )
    console.print("secret (shown once, store it now):")
    print(created.secret)


@keys_app.command("list")
def list_keys(ctx: typer.Context, as_json: bool = JSON) -> None:
    """List API keys (never their secrets)."""
    items = state(ctx).client().keys.list()
    if as_json:
        print_json(items)
        return
    rows = [
        (
            k.id,
            k.name,
            k.prefix,
            _roles_text(k),
            "revoked" if k.revoked_at else "active",
            k.last_used_at.strftime("%Y-%m-%d %H:%M") if k.last_used_at else "never",
        )
        for k in items
    ]
    table("API keys", ["id", "name", "prefix", "roles", "status", "last used"], rows)


@keys_app.command("revoke")
def revoke_key(ctx: typer.Context, key_id: str, as_json: bool = JSON) -> None:
    """Revoke a key: it stops working at once."""
    key = state(ctx).client().keys.revoke(key_id)
    if as_json:
        print_json(key)
    else:
        console.print(f"revoked key [bold]{key.name}[/] ({key.id})")


@keys_app.command("grant")
def grant_role(
    ctx: typer.Context, key_id: str, project: str, role: Role, as_json: bool = JSON
) -> None:
    """Give a key a role in a project."""
    key = state(ctx).client().keys.grant(key_id, project, role)
    if as_json:
        print_json(key)
    else:
        console.print(f"key [bold]{key.name}[/] now has roles: {_roles_text(key)}")
