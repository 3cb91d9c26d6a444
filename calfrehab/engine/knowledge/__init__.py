"""The knowledge base: the rule language, loading rule files, the ladder,
the fact catalogue, condition algebra and the compiler to durable-rules."""
