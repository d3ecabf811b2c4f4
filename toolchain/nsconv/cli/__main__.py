# SPDX-License-Identifier: Apache-2.0
from nsconv.cli import main

main()
