"""The report: tables (CSV + Markdown), seaborn figures and one self-contained HTML page."""
