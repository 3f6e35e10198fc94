"""One table, every format: what ``hpo report``, ``hpo compare`` and ``hpo evaluate`` print.

A :class:`Table` holds cells as numbers or text; each format renders the same cells, so the
Markdown a README gets, the LaTeX a paper gets, the CSV a spreadsheet gets and the JSON a
script gets never disagree. Numbers are shown to ``digits`` significant digits in the text
formats, and whole in CSV and JSON unless ``data_digits`` says how many to keep there (the
report keeps 6, all a score carries: trials store fold scores to 6 decimals). A cell may be a
:class:`MeanStd` (mean ± standard deviation, with what it is over) or marked best (bold in
HTML, Markdown and LaTeX).
"""

from __future__ import annotations

import csv
import html
import io
import json
import math
from dataclasses import dataclass, field
from typing import Any

FORMATS = ("html", "md", "tex", "csv", "json")
_TEX_SPECIAL = {
    "\\": r"\textbackslash{}",
    "&": r"\&",
    "%": r"\%",
    "$": r"\$",
    "#": r"\#",
    "_": r"\_",
    "{": r"\{",
    "}": r"\}",
    "~": r"\textasciitilde{}",
    "^": r"\textasciicircum{}",
}


@dataclass(frozen=True)
class MeanStd:
    """A mean ± standard deviation (``std`` None: the mean alone)."""

    mean: float
    std: float | None = None


@dataclass(frozen=True)
class Best:
    """A cell shown in bold: the best value of its column."""

    value: Any


@dataclass
class Table:
    """Column names, rows of cells, a caption saying what the numbers are over."""

    columns: list[str]
    rows: list[list[Any]] = field(default_factory=list)
    caption: str = ""
    digits: int = 3
    shade: bool = False  # HTML only: numbers in [0, 1] tint their cell (a heat map)
    data_digits: int | None = None  # CSV and JSON: significant digits kept (None: all)
    zeros: bool = False  # text formats: keep trailing zeros (0.700), so columns line up

    def add(self, *cells: Any) -> None:
        if len(cells) != len(self.columns):
            raise ValueError(f"{len(cells)} cells for {len(self.columns)} columns")
        self.rows.append(list(cells))

    def render(self, fmt: str) -> str:
        """The table as ``fmt``: one of :data:`FORMATS`."""
        return {
            "html": self.html,
            "md": self.markdown,
            "tex": self.latex,
            "csv": self.csv,
            "json": lambda: json.dumps(self.as_dict(), indent=2),
        }[fmt]()

    def _text(self, cell: Any, escape=lambda s: s, pm: str = " ± ") -> str:
        if isinstance(cell, Best):
            return self._text(cell.value, escape, pm)
        if isinstance(cell, MeanStd):
            mean = _num(cell.mean, self.digits, self.zeros)
            return (
                mean if cell.std is None else f"{mean}{pm}{_num(cell.std, self.digits, self.zeros)}"
            )
        if isinstance(cell, float):
            return _num(cell, self.digits, self.zeros)
        return escape("" if cell is None else str(cell))

    def markdown(self) -> str:
        def cell(c: Any) -> str:
            text = self._text(c, lambda s: s.replace("|", r"\|"))
            return f"**{text}**" if isinstance(c, Best) else text

        lines = [
            "| " + " | ".join(self.columns) + " |",
            "|" + "|".join("---" for _ in self.columns) + "|",
            *("| " + " | ".join(cell(c) for c in row) + " |" for row in self.rows),
        ]
        return (f"{self.caption}\n\n" if self.caption else "") + "\n".join(lines) + "\n"

    def latex(self) -> str:
        """booktabs, ``\\pm``, the best value in bold, every text cell escaped."""

        def cell(c: Any) -> str:
            text = self._text(c, tex_escape, pm=r" $\pm$ ")
            return rf"\textbf{{{text}}}" if isinstance(c, Best) else text

        align = "".join("r" if _numeric(self.rows, i) else "l" for i in range(len(self.columns)))
        body = [" & ".join(cell(c) for c in row) + r" \\" for row in self.rows]
        out = [
            r"\begin{table}[t]",
            r"\centering",
            *([rf"\caption{{{tex_escape(self.caption)}}}"] if self.caption else []),
            rf"\begin{{tabular}}{{{align}}}",
            r"\toprule",
            " & ".join(tex_escape(c) for c in self.columns) + r" \\",
            r"\midrule",
            *body,
            r"\bottomrule",
            r"\end{tabular}",
            r"\end{table}",
        ]
        return "\n".join(out) + "\n"

    def csv(self) -> str:
        """Whole numbers: a mean ± std is two columns (``NAME`` and ``NAME std``)."""
        split = [i for i in range(len(self.columns)) if _has_std(self.rows, i)]
        header: list[str] = []
        for i, c in enumerate(self.columns):
            header += [c, f"{c} std"] if i in split else [c]
        buf = io.StringIO()
        w = csv.writer(buf, lineterminator="\n")
        w.writerow(header)
        for row in self.rows:
            cells: list[Any] = []
            for i, c in enumerate(row):
                v = _raw(c, self.data_digits)
                if i in split:
                    cells += [v.mean, v.std] if isinstance(v, MeanStd) else [v, ""]
                else:
                    cells.append(v.mean if isinstance(v, MeanStd) else v)
            w.writerow(cells)
        return buf.getvalue()

    def as_dict(self) -> dict[str, Any]:
        """JSON-ready: rows as objects keyed by column; a mean ± std as {mean, std}."""

        def value(c: Any) -> Any:
            v = _raw(c, self.data_digits)
            if isinstance(v, MeanStd):
                return {"mean": v.mean, "std": v.std}
            return None if isinstance(v, float) and math.isnan(v) else v

        rows = [dict(zip(self.columns, (value(c) for c in row), strict=True)) for row in self.rows]
        return {"caption": self.caption, "columns": self.columns, "rows": rows}

    def plain(self) -> str:
        """Aligned columns for a terminal, under the caption (text first, numbers right);
        an empty cell shows as a dash."""
        cells = ([self._text("–" if c is None else c) for c in r] for r in self.rows)
        rows = [self.columns, *cells]
        widths = [max(len(r[i]) for r in rows) for i in range(len(self.columns))]
        lines = [
            "  ".join(
                c.ljust(w) if i == 0 else c.rjust(w)
                for i, (c, w) in enumerate(zip(r, widths, strict=True))
            )
            for r in rows
        ]
        return f"{self.caption}\n" + "\n".join(line.rstrip() for line in lines) + "\n"

    def html(self) -> str:
        def cell(c: Any) -> str:
            text = html.escape(self._text(c))
            style = ""
            if self.shade and isinstance(c, float) and 0 <= c <= 1:
                style = f' style="background:rgba(31,119,180,{0.6 * c:.2f})"'
            return (
                f"<td{style}><b>{text}</b></td>"
                if isinstance(c, Best)
                else f"<td{style}>{text}</td>"
            )

        head = "".join(f"<th>{html.escape(c)}</th>" for c in self.columns)
        body = "".join("<tr>" + "".join(cell(c) for c in row) + "</tr>" for row in self.rows)
        cap = f"<caption>{html.escape(self.caption)}</caption>" if self.caption else ""
        return f"<table>{cap}<thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>"


def value_text(v: Any) -> str:
    """A parameter value as a person writes it: 3 significant digits, no Python repr."""
    if isinstance(v, float):
        return f"{v:.3g}"
    return str(v)


def params_text(params: dict[str, Any]) -> str:
    """``kernel=rbf, C=950, gamma=0.201``: the parameters a trial has, each readable."""
    return ", ".join(f"{k}={value_text(v)}" for k, v in params.items())


def tex_escape(text: str) -> str:
    """``text`` safe inside LaTeX (label names such as ``pleasant_surprise``)."""
    return "".join(_TEX_SPECIAL.get(ch, ch) for ch in str(text))


def _num(v: float | None, digits: int, zeros: bool = False) -> str:
    if v is None or (isinstance(v, float) and math.isnan(v)):
        return "–"
    if not zeros:
        return f"{v:.{digits}g}"
    # Trailing zeros kept (0.700, not 0.7: a column of scores lines up), except in
    # exponent form (3.1e-05) and after a bare point (950, not "950.").
    text = f"{v:#.{digits}g}"
    return f"{v:.{digits}g}" if "e" in text else text.rstrip(".")


def _raw(c: Any, digits: int | None = None) -> Any:
    """A cell's value for CSV and JSON, numbers to ``digits`` significant digits."""
    v = c.value if isinstance(c, Best) else c
    if isinstance(v, MeanStd):
        return MeanStd(_round(v.mean, digits), _round(v.std, digits))
    return _round(v, digits)


def _round(v: Any, digits: int | None) -> Any:
    if digits is not None and isinstance(v, float) and math.isfinite(v):
        return float(f"{v:.{digits}g}")
    return v


def _numeric(rows: list[list[Any]], i: int) -> bool:
    vals = [_raw(r[i]) for r in rows if _raw(r[i]) is not None]
    return bool(vals) and all(isinstance(v, int | float | MeanStd) for v in vals)


def _has_std(rows: list[list[Any]], i: int) -> bool:
    return any(isinstance(_raw(r[i]), MeanStd) for r in rows)
