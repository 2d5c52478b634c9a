"""One SQLite file: conversations, messages, facts and search land here."""
