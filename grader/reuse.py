"""Reuse of earlier gradings, one implementation for every way of grading (here or on a Dask
cluster): a result is reused when the same student's submission had the same content (the
very same file, or the same graded code), under the same rubric and the same grader build.
Not keyed on the path as typed: `grade class` then `cd class && grade .` reuses everything.

Only graded and ungradable results are kept; a grading error (the grader's own failure, an
interrupted run) is never stored, so it is never reused.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, replace

from dropout_grader.results import STORABLE, SubmissionResult, text_digest


@dataclass
class Reuse:
    gradebook: object | None  # dropout_grader.gradebook.Gradebook, or None: nothing kept
    rubric_sha256: str
    build: str  # build.build_id() of the grader that grades
    regrade: bool = False  # never reuse, but still record

    def known(self, student: str, *, file_sha256: str | None = None,
              code_sha256: str | None = None) -> SubmissionResult | None:
        """The stored result for this student's unchanged submission, marked reused."""
        if self.gradebook is None or self.regrade or not (file_sha256 or code_sha256):
            return None
        found = self.gradebook.lookup(student, self.rubric_sha256, self.build,
                                      file_sha256=file_sha256, code_sha256=code_sha256)
        return replace(found, reused=True) if found is not None else None

    def known_files(self, wanted: list[tuple[str, str]]) -> dict[tuple[str, str], object]:
        """`known` for many (student, file_sha256) pairs at once, one query per few hundred
        students: the gradebook row (gradebook.StoredRow) of each unchanged file found, its
        result not read. Empty when nothing may be reused."""
        if self.gradebook is None or self.regrade or not wanted:
            return {}
        return self.gradebook.latest_by_file(self.rubric_sha256, self.build, wanted)

    def digests(self, rows: list[int]) -> dict[int, str]:
        """results.text_digest of the stored results in `rows` (read, never parsed)."""
        return {row: text_digest(text) for row, text in self.gradebook.texts(rows)}

    def remember(self, result: SubmissionResult, file_sha256: str | None) -> None:
        """Record a result the moment it is known (what makes an interrupted run resumable),
        and note its row on it (`gradebook_id`). Grading errors are not recorded."""
        if self.gradebook is not None and result.status in STORABLE and not result.reused:
            result.gradebook_id = self.gradebook.record(result, result.code_sha256, self.rubric_sha256, self.build,
                                                        file_sha256=file_sha256)


def file_sha256(data: bytes, modules: dict[str, str] | None = None) -> str:
    """A submission's identity in the gradebook: the notebook file's bytes, and the student's
    own helper modules graded with it (a changed helper is a changed submission)."""
    digest = hashlib.sha256(b"file\0")
    digest.update(data)
    for name, source in sorted((modules or {}).items()):
        digest.update(f"\0module\0{name}\0".encode() + source.encode("utf-8", errors="surrogatepass"))
    return digest.hexdigest()
