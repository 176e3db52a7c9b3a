"""Officer deliverables: per-officer workbook, CSV lists, phone page and district overview with
charts, and their e-mail. A leaf: only flows import it."""
