import { render } from 'preact';
import { App } from './app';
// The stylesheets in cascade order: later files override earlier ones where their selectors tie.
import './styles/base.css';
import './styles/top-bar.css';
import './styles/conversation.css';
import './styles/composer.css';
import './styles/overrides.css';
import './styles/batches.css';
import './styles/media.css';

const root = document.getElementById('app');
if (root) render(<App />, root);
