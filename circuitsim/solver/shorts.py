"""Near-short branches: merged before the nodal solve, their currents recovered by KCL after it,
and from those currents the voltage each merged node sits apart from its neighbour.

A branch far more conductive than everything else at its ends (a 1e15 S cell between 2 Ω wires)
puts G next to g ≪ G in the nodal matrix; elimination then subtracts numbers of size G to get ones
of size g and keeps only eps·G/g of relative accuracy (0.1414 A instead of 0.125 A at G/g = 2e15,
−5e19 A at 2e20). Merging the branch's two nodes instead neglects its voltage drop, at most g/G
relative. At G/g = SHORT_RATIO both errors are below 1e-8, so near-shorts past it are merged and
what stays in the matrix spans less than that ratio per branch.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import scipy.sparse as sp
from scipy.sparse.csgraph import breadth_first_order, connected_components

SHORT_RATIO = 1e8  # ≈ 1/sqrt(eps): merging error g/G and elimination error eps·G/g meet here


@dataclass(frozen=True)
class Shorts:
    """branch: indices of the near-short branches; rep: per node, the node representing its merged
    group; child, parent, edge_branch, edge_sign: the
    short branches as tree edges child -> parent, deepest first, with +1 where the branch's own
    direction (a -> b) runs child -> parent; depth: of each edge's child."""

    branch: np.ndarray
    rep: np.ndarray
    child: np.ndarray
    parent: np.ndarray
    edge_branch: np.ndarray
    edge_sign: np.ndarray
    depth: np.ndarray

    def branch_currents(self, leaving: np.ndarray) -> np.ndarray:
        """Currents (batch, shorts) through the short branches (a -> b), from the net current
        (batch, n_nodes) leaving every node through all other branches."""
        total = leaving.copy()
        through = np.empty((leaving.shape[0], len(self.branch)))
        where = np.searchsorted(self.branch, self.edge_branch)
        for level in np.unique(self.depth)[::-1]:  # children before their parents
            e = np.flatnonzero(self.depth == level)
            out = total[:, self.child[e]]  # all of it leaves the child through its edge to the parent
            through[:, where[e]] = -out * self.edge_sign[e]
            np.add.at(total.T, self.parent[e], out.T)
            total[:, self.child[e]] = 0.0
        return through

    def spread_voltages(self, v: np.ndarray, through: np.ndarray, g: np.ndarray) -> None:
        """Give each merged node (v: batch, n_nodes, in place, every node of a group at its
        representative's voltage) the voltage its short branch's current through its conductance g
        (shorts) sets apart from its parent's: the reported nodes then obey KCL at every element."""
        where = np.searchsorted(self.branch, self.edge_branch)
        drop = through[:, where] / g[where] * self.edge_sign  # v(child) − v(parent)
        for level in np.unique(self.depth):  # parents before their children
            e = np.flatnonzero(self.depth == level)
            v[:, self.child[e]] = v[:, self.parent[e]] + drop[:, e]


def find_shorts(a: np.ndarray, b: np.ndarray, g: np.ndarray, fixed: np.ndarray, n_nodes: int) -> Shorts | None:
    """Branches a–b (conductance g) more than SHORT_RATIO times as conductive as everything else at
    their two ends together, or None.

    They form a forest that never touches a source: a source end counts as infinitely conductive,
    and around a loop every branch would have to exceed the next by SHORT_RATIO.
    """
    total = np.bincount(a, g, n_nodes) + np.bincount(b, g, n_nodes)
    total[fixed] = np.inf  # a source holds its voltage whatever flows: no branch at it is a near-short
    # eliminating a node of such a branch computes (G + g_a) + (G + g_b) − 2G-like differences: the
    # rounding of G lands on g_a + g_b, the conductance at its ends besides the branch itself
    branch = np.flatnonzero(g / SHORT_RATIO > (total[a] - g) + (total[b] - g))
    if not len(branch):
        return None
    sa, sb = a[branch], b[branch]
    graph = sp.coo_matrix((np.ones(len(branch)), (sa, sb)), shape=(n_nodes, n_nodes))
    n_groups, label = connected_components(graph, directed=False)
    size = np.bincount(label, minlength=n_groups)
    root_of = np.unique(label, return_index=True)[1]  # each group's first node represents it
    # one breadth-first search from a virtual node joined to every root gives the whole forest
    virtual = n_nodes
    roots = root_of[size > 1]
    rows, cols = np.r_[sa, np.full(len(roots), virtual)], np.r_[sb, roots]
    forest = sp.coo_matrix((np.ones(len(rows)), (rows, cols)), shape=(n_nodes + 1, n_nodes + 1)).tocsr()
    order, pred = breadth_first_order(forest, virtual, directed=False)
    child = order[1:][pred[order[1:]] != virtual]
    parent = pred[child]
    depth = np.zeros(n_nodes + 1, dtype=int)
    while not np.array_equal(depth[child], depth[parent] + 1):  # one pass per level of the deepest tree
        depth[child] = depth[parent] + 1
    # which branch joins each child to its parent
    key = np.minimum(sa, sb) * (n_nodes + 1) + np.maximum(sa, sb)
    sorter = np.argsort(key)
    edge_key = np.minimum(child, parent) * (n_nodes + 1) + np.maximum(child, parent)
    edge_branch = branch[sorter[np.searchsorted(key, edge_key, sorter=sorter)]]
    deepest_first = np.argsort(-depth[child], kind="stable")
    child, parent, edge_branch = child[deepest_first], parent[deepest_first], edge_branch[deepest_first]
    return Shorts(branch=branch, rep=root_of[label], child=child, parent=parent, edge_branch=edge_branch,
                  edge_sign=np.where(a[edge_branch] == child, 1.0, -1.0), depth=depth[child])
