"""Reading a corpus release as downloaded: the zip archive or its extracted folder."""

from __future__ import annotations

import functools
import zipfile
from dataclasses import dataclass
from pathlib import Path, PurePosixPath

from hpo.errors import CorpusError

SYNTH_MARKER = "hpo-synthetic.json"
# Operating-system litter that archives and file browsers add; not an input, so not listed.
_JUNK_NAMES = {".DS_Store", "Thumbs.db", "desktop.ini"}


def is_junk(member: str) -> bool:
    parts = PurePosixPath(member).parts
    return (
        any(p == "__MACOSX" for p in parts)
        or parts[-1] in _JUNK_NAMES
        or parts[-1].startswith("._")
    )


@dataclass(frozen=True)
class Source:
    """A zip archive or a directory holding the release (or the files a CSV lists)."""

    path: Path

    @property
    def is_zip(self) -> bool:
        return self.path.is_file()

    def members(self) -> list[str]:
        """Relative POSIX paths of every file in the source, sorted."""
        if self.is_zip:
            with zipfile.ZipFile(self.path) as z:
                names = [i.filename for i in z.infolist() if not i.is_dir()]
        else:
            names = [
                p.relative_to(self.path).as_posix() for p in self.path.rglob("*") if p.is_file()
            ]
        return sorted(n for n in names if not is_junk(n))

    def read(self, member: str) -> bytes:
        if self.is_zip:
            st = self.path.stat()
            return _open_zip(str(self.path), st.st_mtime_ns, st.st_size).read(member)
        return (self.path / member).read_bytes()


@functools.lru_cache(maxsize=2)
def _open_zip(path: str, mtime_ns: int, size: int) -> zipfile.ZipFile:
    """One open archive per process (per version of the file): its directory is read once,
    not once per clip."""
    return zipfile.ZipFile(path)


def open_source(path: str | Path) -> Source:
    """Check that ``path`` is a readable directory or zip archive."""
    p = Path(path)
    if not p.exists():
        raise CorpusError(f"{p}: no such file or directory; give the corpus's zip or its folder")
    if p.is_file():
        if not zipfile.is_zipfile(p):
            raise CorpusError(
                f"{p}: not a zip archive; give the release's zip (such as "
                "Audio_Speech_Actors_01-24.zip) or its folder"
            )
        try:
            with zipfile.ZipFile(p) as z:
                z.infolist()
        except (zipfile.BadZipFile, OSError) as e:
            raise CorpusError(f"{p}: unreadable zip archive ({e})") from None
    return Source(p)
