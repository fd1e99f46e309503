"""Text generation: its task module, and its OpenAI API and vLLM server."""
