from tfemotion.cli import main

raise SystemExit(main())
