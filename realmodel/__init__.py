"""A real small model (SmolLM2-135M-Instruct from a GGUF) as a Keel base model: English safety corpus,
alignment stage, customer task and the realignment bench. Pure Python + torch; no web/DB/queue imports."""
