"""The ``loopml`` command."""

from __future__ import annotations

import typer
from pydantic import ValidationError
from rich.markup import escape
from typer.core import TyperGroup

from loopml import __version__
from loopml.cli import alerts, workflow_triggers  # noqa: F401  (their commands join monitor_app, workflow_app)
from loopml.cli.access import keys_app, projects_app
from loopml.cli.context import CliState
from loopml.cli.data import data_app
from loopml.cli.demo import demo
from loopml.cli.deployments import deployments_app
from loopml.cli.jobs import jobs_app
from loopml.cli.labels import labels_app
from loopml.cli.monitor import monitor_app
from loopml.cli.output import err_console
from loopml.cli.serve import db_app, server, worker
from loopml.cli.serving import deploy, models_app, predict
from loopml.cli.train import train
from loopml.cli.workflows import workflow_app
from loopml.core.errors import InvalidInput, LoopmlError
from loopml.settings import Settings


class _Group(TyperGroup):
    def invoke(self, ctx: typer.Context) -> object:  # type: ignore[override]
        try:
            return super().invoke(ctx)
        except LoopmlError as exc:
            where = f" ({exc.field})" if exc.field else ""
            # soft_wrap: an error message stays one line, whole for grep and copy-paste.
            err_console.print(
                f"[bold red]error{escape(where)}:[/] {escape(exc.message)}", soft_wrap=True
            )
            raise typer.Exit(2 if isinstance(exc, InvalidInput) else 1) from None
        except ValidationError as exc:
            if exc.title != Settings.__name__:
                raise
            # A bad value from LOOPML_*, loopml.toml or an option: say which, no traceback.
            for error in exc.errors():
                name = ".".join(str(part) for part in error["loc"])
                err_console.print(
                    f"[bold red]error (setting {escape(name)}):[/] {escape(error['msg'])} "
                    f"(got {escape(repr(error.get('input')))}; check the command's options, "
                    f"LOOPML_{escape(name.upper())} and loopml.toml)",
                    soft_wrap=True,
                )
            raise typer.Exit(2) from None


app = typer.Typer(
    cls=_Group,
    help="loopml: data, AutoML, deployment, workflows and monitoring on your own machine.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    add_completion=False,
)


@app.callback()
def _root(
    ctx: typer.Context,
    url: str = typer.Option(
        None, envvar="LOOPML_URL", help="Server to talk to; without it, the home directly."
    ),
    key: str = typer.Option(None, envvar="LOOPML_API_KEY", help="API key for --url."),
) -> None:
    ctx.obj = CliState(url=url, key=key)
    ctx.call_on_close(ctx.obj.close)


@app.command()
def version() -> None:
    """Print loopml's version."""
    print(__version__)


app.command()(server)
app.command()(worker)
app.command()(demo)
app.command()(train)
app.command()(deploy)
app.command()(predict)
app.add_typer(db_app, name="db")
app.add_typer(projects_app, name="projects")
app.add_typer(keys_app, name="keys")
app.add_typer(jobs_app, name="jobs")
data_app.add_typer(labels_app, name="labels")
app.add_typer(data_app, name="data")
app.add_typer(models_app, name="models")
app.add_typer(deployments_app, name="deployments")
app.add_typer(workflow_app, name="workflow")
app.add_typer(monitor_app, name="monitor")


def main() -> None:
    app()


if __name__ == "__main__":
    main()
