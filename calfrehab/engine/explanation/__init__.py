"""Explanation: the decision document, reasons, HOW and WHY-NOT."""
