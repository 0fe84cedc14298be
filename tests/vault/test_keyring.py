"""Master key configuration: parsing, ids, the development key file, and clear refusals."""

from __future__ import annotations

import base64
import stat
from pathlib import Path

import pytest
from pydantic import SecretStr

from app.vault.keyring import KeyRing, KeyRingError, fingerprint, load_keyring, parse_key
from tests.conftest import MASTER_KEY_A, MASTER_KEY_B, make_settings

SQLITE = "sqlite+aiosqlite:///unused.db"


def settings(tmp_path: Path, **overrides: object):  # type: ignore[no-untyped-def]
    values = {"master_keys": None}
    values.update(overrides)
    return make_settings(tmp_path, SQLITE, **values)


class TestParsing:
    def test_id_is_a_stable_fingerprint(self) -> None:
        key = parse_key(MASTER_KEY_A, "x")
        assert key.id == fingerprint(base64.b64decode(MASTER_KEY_A))
        assert key.id.startswith("mk_") and MASTER_KEY_A not in key.id
        assert parse_key(MASTER_KEY_A, "y").id == key.id != parse_key(MASTER_KEY_B, "x").id

    @pytest.mark.parametrize("value", ["not base64!", base64.b64encode(b"short").decode(), ""])
    def test_bad_key_is_refused_without_quoting_it(self, value: str) -> None:
        with pytest.raises(KeyRingError) as caught:
            parse_key(value, "SIGNVAULT_MASTER_KEY")
        assert "SIGNVAULT_MASTER_KEY" in str(caught.value)
        if value:
            assert value not in str(caught.value)

    def test_repr_hides_material(self) -> None:
        assert "AAAA" not in repr(parse_key(MASTER_KEY_A, "x"))

    def test_duplicate_keys_are_refused(self) -> None:
        with pytest.raises(KeyRingError, match="twice"):
            KeyRing((parse_key(MASTER_KEY_A, "a"), parse_key(MASTER_KEY_A, "b")))


class TestLoading:
    def test_master_keys_newest_first(self, tmp_path: Path) -> None:
        ring = load_keyring(settings(tmp_path, master_keys=SecretStr(f"{MASTER_KEY_B}, {MASTER_KEY_A}")))
        assert ring.primary.id == parse_key(MASTER_KEY_B, "b").id
        assert len(ring.keys) == 2 and not ring.generated

    def test_single_master_key(self, tmp_path: Path) -> None:
        ring = load_keyring(settings(tmp_path, master_key=SecretStr(MASTER_KEY_A)))
        assert ring.ids == [parse_key(MASTER_KEY_A, "a").id]

    def test_key_file_one_key_per_line(self, tmp_path: Path) -> None:
        path = tmp_path / "keys"
        path.write_text(f"{MASTER_KEY_B}\n{MASTER_KEY_A}\n")
        path.chmod(0o600)
        ring = load_keyring(settings(tmp_path, master_key_file=path))
        assert ring.primary.id == parse_key(MASTER_KEY_B, "b").id

    def test_missing_key_file_is_a_clear_error(self, tmp_path: Path) -> None:
        with pytest.raises(KeyRingError, match="cannot read"):
            load_keyring(settings(tmp_path, master_key_file=tmp_path / "absent"))

    def test_a_key_given_where_its_files_path_goes_is_never_echoed(self, tmp_path: Path) -> None:
        # The error reaches the log, the CLI and the unauthenticated /readyz.
        with pytest.raises(KeyRingError) as refused:
            load_keyring(settings(tmp_path, master_key_file=Path(MASTER_KEY_A)))
        assert MASTER_KEY_A not in str(refused.value) and "SIGNVAULT_MASTER_KEY_FILE" in str(refused.value)

    def test_wrong_length_key_is_refused(self, tmp_path: Path) -> None:
        short = base64.b64encode(b"x" * 16).decode()
        with pytest.raises(KeyRingError, match="32 bytes"):
            load_keyring(settings(tmp_path, master_key=SecretStr(short)))

    def test_external_database_without_a_key_is_refused(self, tmp_path: Path) -> None:
        with pytest.raises(KeyRingError, match="external database"):
            load_keyring(make_settings(tmp_path, "postgresql+asyncpg://x@localhost/db", master_keys=None))
        assert not (tmp_path / "signvault.master.key").exists()


class TestDevelopmentKey:
    def test_created_once_with_mode_0600_and_reused(self, tmp_path: Path) -> None:
        first = load_keyring(settings(tmp_path))
        path = tmp_path / "signvault.master.key"
        assert first.generated
        assert stat.S_IMODE(path.stat().st_mode) == 0o600
        assert len(base64.b64decode(path.read_text().strip())) == 32
        again = load_keyring(settings(tmp_path))
        assert again.ids == first.ids
