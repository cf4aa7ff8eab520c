"""Hugging Face: search GGUF repos, list their quants, read headers remotely, download.

client         `Hub`: search and file listings through huggingface_hub
errors         Hub answers as plain errors; where HF_TOKEN may be sent
remote_header  a GGUF header read with Range requests (a bounded stream)
downloads      `Downloader`: resumable, verified, one writer per file
jobs           download jobs, progress snapshots, retries, the rate limiter
parts          `.part` files, sidecars, locks, hashing, disk checks
"""
