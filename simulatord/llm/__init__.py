"""Built-in simulations of LLM providers' HTTP APIs (OpenAI, Anthropic), scripted per session by rules."""
