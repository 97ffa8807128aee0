"""``mlpipe lineage URI``: where an artifact came from."""

from __future__ import annotations

import json
from typing import Annotated, Any

import typer
from rich.tree import Tree

from mlpipe.cli.common import Output, open_engine
from mlpipe.cli.output import OutputFormat, console, guarded
from mlpipe.runtime.lineage_report import lineage_tree


def _label(node: dict[str, Any]) -> str:
    producer = node.get("producer")
    digest = (node.get("sha256") or "")[:12]
    if producer is None:
        etag = f" etag {node['etag']}" if node.get("etag") else ""
        version = f" version {node['version_id']}" if node.get("version_id") else ""
        return f"[bold]{node['uri']}[/] source{etag}{version} sha256 {digest or '-'}"
    commit = (node.get("git_commit") or "-")[:12]
    return (f"[bold]{node['uri']}[/] {node['kind']} sha256 {digest} size {node['size']}\n"
            f"  made by {producer['dag_id']}/{producer['run_id']}/{producer['task_id']} "
            f"try {producer['try_number']}, git {commit}, config {node['config_hash'][:12]}")


def _add(tree: Tree, node: dict[str, Any]) -> None:
    branch = tree.add(_label(node))
    for child in node["inputs"]:
        _add(branch, child)


@guarded
def lineage(uri: str, output: Output = OutputFormat.table,
            as_json: Annotated[bool, typer.Option("--json", hidden=True,
                                                  help="Same as -o json")] = False
            ) -> None:
    """Print the chain from an artifact back to its sources (S3 objects with ETags)."""
    engine = open_engine(None, check_folder=False)
    node = lineage_tree(engine.store, uri)
    if as_json or output is OutputFormat.json:
        typer.echo(json.dumps(node, indent=2, default=str))
        return
    root = Tree(_label(node))
    for child in node["inputs"]:
        _add(root, child)
    console.print(root)
