"""The `embedscope` command line: one module per command, each exposing `register(subparsers)`.

A command's `register` adds its sub-parser and sets `func=run`, where
`run(args: argparse.Namespace, settings: Settings) -> int` returns the exit code
(core.cli.common: 0 ok, 1 failure, 2 usage, 3 partial). core/__main__.py builds the settings and
turns an escaping CoreError into `error: <message>` with exit code 1.
"""
