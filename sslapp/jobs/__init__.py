"""Jobs: the UI and CLI enqueue, a worker process runs them and reports progress to the database."""
