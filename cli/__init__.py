"""`llm-tui` on the command line: the headless front end over the same core as the TUI.

    main     the parser, dispatch, and turning expected failures into one line
    config   `config get|set|list|check|init|path|gateway`
    operate  `up`, `down`, `status`, `restart`, `swap`, `logs`, `chat`, `compose`, `doctor`
    models   `models`, `fit`, `rm`
    hub      `search`, `files`, `pull`
    output   what the commands share: sizes, the VRAM option, error printing

Textual is imported only when the TUI starts, so the other commands start fast.
"""
