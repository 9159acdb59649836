"""Commands explain a database that is not migrated, rather than printing a traceback."""

import pytest

from tests.conftest import make_app


@pytest.mark.parametrize("args", [["site", "list"], ["verify"], ["demo"], ["key", "list"]])
def test_unmigrated_database_is_a_clear_error(tmp_path, args):
    app = make_app(f"sqlite:///{tmp_path / 'empty.sqlite3'}")
    result = app.test_cli_runner().invoke(args=args)
    assert result.exit_code == 1
    assert "not migrated (run `cmp db upgrade`)" in result.output
    assert "Traceback" not in result.output
