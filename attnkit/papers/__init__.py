"""One module per paper notebook: its profile sizes, the paper's numbers with sources, the steps and the figures."""
