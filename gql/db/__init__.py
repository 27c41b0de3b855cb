"""The data layer: tables, engine, migrations and every query."""
