"""OMNI curriculum: learning progress + interestingness choose where the training budget goes
(docs/curriculum.md). Import the parts from their modules; this package imports nothing heavy."""
