"""The case file: pydantic models of the contract, validation with every
error named, and JSON-pointer-like paths into a document."""
