"""``softac suite``: a named matrix of (algorithm variant x environment) cells, each cell's seeds
trained as learners in one ``softac train --seeds`` process, resumable, collected into results.csv."""
