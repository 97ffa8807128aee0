"""One repository per family of tables; ``MetadataStore`` composes them. Rows in, rows out:
a repository never calls the scheduler, an executor or tracking."""
