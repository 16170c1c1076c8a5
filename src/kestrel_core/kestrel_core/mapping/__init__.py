"""Neural mapping: egocentric top-down grids, allocentric memory, MapNet localization,
a topological place graph with pose-graph loop closure, and map files.

Modules: ``egocentric`` (observations to grids), ``allocentric`` (differentiable warps),
``memory`` (log-odds and feature map that grows), ``localization`` (MapNet correlation),
``descriptor`` and ``topological`` (places and revisits), ``posegraph`` (SE(2) Gauss-Newton),
``mapper`` (the pipeline), ``io`` (map_server PGM + YAML and the full ``.npz`` state),
``se2`` (planar poses), ``colouring`` (map channels as a display image).
"""
