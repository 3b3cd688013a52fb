"""One module per page; ``app.serve`` discovers them (SLUG, TITLE, DESCRIPTION, ORDER, page)."""
