"""llm-tui's Textual interface. It calls `stack/` and renders; `stack/` never imports it."""
