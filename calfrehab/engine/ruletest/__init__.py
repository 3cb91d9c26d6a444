"""Testing a knowledge base as data: each rule file's case table."""
