"""Report formats: each module is a pure function of the result model (`grader.results`),
plus `files.write_atomic` to put the text on disk without ever leaving half a file."""
