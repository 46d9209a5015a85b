"""dia_sim: simulation of the DIA workload and the AP visit loop."""
