from micronas.cli import main

raise SystemExit(main())
