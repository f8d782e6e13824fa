"""The API client: signed requests over a transport, retries, paging into image records."""
