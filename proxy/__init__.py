"""smart-model-router: an OpenAI-compatible proxy that routes each prompt to the cheapest tier."""
