// Prints what litevit::GhostHeadOp makes of one node, for tests/plugins/test_ghost_head_core.py.
//
// Usage: test_ghost_head_core [NAME=V1,V2,...]... -- [D0,D1,...]...   (attributes, then one shape per input);
// the facts it prints are listed in core_test_util.h.
#include "ghost_head/ghost_head_core.h"

#include "core_test_util.h"

int main(int argc, char** argv)
{
    return litevit_test::coreTestMain<litevit::GhostHeadOp>(argc, argv);
}
