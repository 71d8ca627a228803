"""Answers: composed from retrieved clauses, every sentence tagged with the clause it came from."""
