"""sources/code_files.py: listing hostile archives safely (`../` and absolute members, links, device
entries, a zip bomb, member and byte bounds, a cut tar.gz), seen through the code extractor."""

from __future__ import annotations

import collections
import io
import os
import tarfile
import zipfile

from pipeline.core.schema import Doc
from sources.code import CodeConfig
from tests.sources.code_fixtures import MIT, by_path, extract


def add_bytes(tf: tarfile.TarFile, name: str, data: bytes, **kw) -> None:
    info = tarfile.TarInfo(name)
    info.size = len(data)
    for k, v in kw.items():
        setattr(info, k, v)
    tf.addfile(info, io.BytesIO(data))


def test_tar_archive_hostile_members(tmp_path):
    archive = tmp_path / "proj-1.0.tar.gz"
    with tarfile.open(archive, "w:gz") as tf:
        add_bytes(tf, "proj/LICENSE", MIT.encode())
        add_bytes(tf, "proj/main.py", b"print('ok')\n")
        add_bytes(tf, "../evil.py", b"print('evil')\n")
        add_bytes(tf, "/etc/evil.py", b"print('evil')\n")
        add_bytes(tf, "proj/link.py", b"", type=tarfile.SYMTYPE, linkname="/etc/passwd")
        add_bytes(tf, "proj/fifo", b"", type=tarfile.FIFOTYPE)
    items = extract([archive], tmp_path)
    assert by_path(items) == {"proj/LICENSE": "code:unknown-language", "proj/main.py": "kept",
                              "../evil.py": "code:unsafe-path", "/etc/evil.py": "code:unsafe-path",
                              "proj/link.py": "code:symlink", "proj/fifo": "code:special-file"}
    main = next(i for i in items if isinstance(i, Doc))
    assert main.id == "code/proj-1.0/proj/main.py" and main.meta["license"] == "MIT"
    assert not (tmp_path.parent / "evil.py").exists()
    # a cut archive keeps what was read before the damage and records the cut
    cut = tmp_path / "cut.tar.gz"
    big = tmp_path / "big.tar.gz"
    with tarfile.open(big, "w:gz") as tf:
        for i in range(40):
            add_bytes(tf, f"m{i:02d}.py", os.urandom(3000).hex().encode()[:3000] + b"\n")
    cut.write_bytes(big.read_bytes()[: big.stat().st_size // 2])
    got = collections.Counter(getattr(i, "reason", "kept") for i in extract([cut], tmp_path))
    assert got["code:corrupt-archive"] == 1 and got["kept"] + got["code:low-alnum"] + got["code:long-lines"] >= 5


def test_zip_bomb_and_bounds(tmp_path):
    bomb = tmp_path / "bomb.zip"
    with zipfile.ZipFile(bomb, "w", zipfile.ZIP_DEFLATED) as zf:
        zf.writestr("ok.py", "x = 1\n")
        zf.writestr("../escape.py", "x = 2\n")
        for i in range(5):
            zf.writestr(f"huge{i}.py", b"#" * (20 << 20))  # 20 MB each, ~20 KB compressed
    assert bomb.stat().st_size < 1 << 20
    items = extract([bomb], tmp_path)
    assert by_path(items) == {"ok.py": "kept", "../escape.py": "code:unsafe-path",
                              **{f"huge{i}.py": "code:too-large" for i in range(5)}}
    # bounded member count and total bytes, counted per member
    many = tmp_path / "many.zip"
    with zipfile.ZipFile(many, "w") as zf:
        for i in range(10):
            zf.writestr(f"f{i}.py", f"x = {i}\n" * 100)
    cfg = CodeConfig(max_archive_members=4)
    assert collections.Counter(by_path(extract([many], tmp_path, cfg)).values()) == {
        "kept": 4, "code:archive-member-limit": 6}
    cfg = CodeConfig(max_archive_bytes=2000)
    got = collections.Counter(by_path(extract([many], tmp_path, cfg)).values())
    assert got == {"kept": 4, "code:archive-size-limit": 6}  # 600 bytes each: the 5th starts past 2000
    (tmp_path / "notzip.zip").write_bytes(b"PK\x03\x04garbage")
    [row] = extract([tmp_path / "notzip.zip"], tmp_path)
    assert row.reason == "code:corrupt-archive" and str(tmp_path / "notzip.zip") in row.meta["error"]
