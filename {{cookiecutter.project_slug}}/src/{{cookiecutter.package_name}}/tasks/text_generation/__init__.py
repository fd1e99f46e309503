"""Text generation: the task module, its OpenAI API and vLLM server, and its bake-time defaults."""
