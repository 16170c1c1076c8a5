"""Reports of ``kestrel eval``: ``report.md`` with tables, ``results.json``, PNG figures."""

from kestrel_tools.reports.writer import (REPORT_FILE, RESULTS_FILE, markdown_table,
                                          summary_lines, write_report)

__all__ = ["REPORT_FILE", "RESULTS_FILE", "markdown_table", "summary_lines", "write_report"]
