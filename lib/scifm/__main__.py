from scifm.cli import main

raise SystemExit(main())
