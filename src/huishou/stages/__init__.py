"""One thin file per command: read -> call libraries -> write -> log. Only huishou.cli refers to them."""
